"""Data-quality issue kinds and the thresholds of their rules.

The thresholds are module constants for now; they become settings (or county-editable data) once
the lead moves them into `app/core/config.py`.
"""

from __future__ import annotations

from enum import StrEnum


class IssueKind(StrEnum):
    """Stable codes; the order here is the order of the list."""

    id_number_missing = "id_number_missing"  # 无身份证号
    id_number_invalid = "id_number_invalid"  # 身份证号校验不通过
    id_number_duplicate = "id_number_duplicate"  # 身份证号重复
    head_not_member = "head_not_member"  # 户主不在家庭成员中
    size_mismatch = "size_mismatch"  # 家庭人口数与成员不符
    cause_contradicts_members = "cause_contradicts_members"  # 致贫原因与成员情况矛盾
    cause_repeated = "cause_repeated"  # 次要致贫原因与主要原因相同
    income_implausible = "income_implausible"  # 收入数据异常
    visit_without_photo = "visit_without_photo"  # 走访无照片
    deceased_member_listed = "deceased_member_listed"  # 死亡人员未销户
    # Computed in Python after the SQL kinds: it stays the last kind.
    visit_far_from_village = "visit_far_from_village"  # 走访位置远离本村


KIND_ORDER: dict[IssueKind, int] = {kind: rank for rank, kind in enumerate(IssueKind)}

LABELS: dict[type[StrEnum], dict[str, str]] = {
    IssueKind: {
        "id_number_missing": "无身份证号",
        "id_number_invalid": "身份证号校验不通过",
        "id_number_duplicate": "身份证号重复",
        "head_not_member": "户主不在家庭成员中",
        "size_mismatch": "家庭人口数与成员不符",
        "cause_contradicts_members": "致贫原因与成员情况矛盾",
        "cause_repeated": "次要致贫原因与主要原因相同",
        "income_implausible": "收入数据异常",
        "visit_without_photo": "走访无照片",
        "deceased_member_listed": "死亡人员未销户",
        "visit_far_from_village": "走访位置远离本村",
    },
}


class IssueRecordType(StrEnum):
    household = "household"
    member = "member"
    visit = "visit"
    income_snapshot = "income_snapshot"


# The checks' bounds are settings (app.core.config): quality_max_per_capita_yuan,
# quality_far_from_village_km and quality_min_other_visits.
# Visit modes that are not in person: no photo is expected and their position says nothing
# about where the household lives.
REMOTE_VISIT_MODES = ("phone", "video")
