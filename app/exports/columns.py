"""The export's columns: Chinese headers, and each household's (or case's) cells from its row.

One row per household of the region (see `app.progress.region.household_rows`), with the
household progress's figures under the same rules and its latest monitoring case; and one row
per monitoring case (the cases sheet). Personal data (the head's ID number, the phone) is
masked as in the household API unless the caller may see it for that village.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.auth.principal import Principal
from app.households import id_numbers
from app.households.vocabulary import ATTRIBUTE_LABELS, CAUSE_LABELS, STATUS_LABELS
from app.monitoring.vocabulary import (
    LABELS as MONITORING_LABELS,
)
from app.monitoring.vocabulary import (
    CaseCategory,
    CaseStatus,
    ClearingMethod,
    Decision,
    FoundVia,
    Origin,
    RiskType,
    Step,
)
from app.progress import household as rules
from app.progress.household_schemas import EXIT_BLOCK_LABELS, ExitBlock
from app.records.vocabulary import (
    CHECK_LABELS,
    INDICATOR_LABELS,
    INDICATORS,
    MEASURE_STATUS_LABELS,
    Check,
    MeasureStatus,
)


class Kind(StrEnum):
    """How a cell is written: CSV writes text; XLSX types numbers, money and dates."""

    text = "text"
    identifier = "identifier"  # digits that are no number: 户编号, codes, ID numbers, phones
    integer = "integer"
    money = "money"  # yuan, two decimals (from fen)
    percent = "percent"  # one decimal, in percent
    timestamp = "timestamp"  # local time of `tz`, to the minute
    date = "date"  # a calendar date


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind = Kind.text
    width: int = 12  # XLSX column width, in characters


ORIGIN_LABELS = MONITORING_LABELS[Origin]
CATEGORY_LABELS = MONITORING_LABELS[CaseCategory]
CASE_STATUS_LABELS = MONITORING_LABELS[CaseStatus]
CLEARING_METHOD_LABELS = MONITORING_LABELS[ClearingMethod]
RISK_TYPE_LABELS = MONITORING_LABELS[RiskType]
FOUND_VIA_LABELS = MONITORING_LABELS[FoundVia]
STEP_LABELS = MONITORING_LABELS[Step]
DECISION_LABELS = MONITORING_LABELS[Decision]
FLAG_LABELS = {
    "income_drop": "收入骤降",
    "below_monitoring_threshold": "低于监测标准",
    "indicator_lost": "保障指标返弹",
    "measure_overdue": "帮扶措施逾期",
    "visit_overdue": "走访逾期",
    "photos_missing": "照片缺失",
}
YES, NO = "是", "否"

COLUMNS: tuple[Column, ...] = (
    Column("户编号", Kind.identifier, 20),
    Column("县代码", Kind.identifier, 8),
    Column("村代码", Kind.identifier, 14),
    Column("村名", width=14),
    Column("村民小组", width=10),
    Column("户主姓名", width=10),
    Column("户主身份证号", Kind.identifier, 20),
    Column("联系电话", Kind.identifier, 14),
    Column("家庭人口", Kind.integer, 8),
    Column("户类别", width=10),
    Column("贫困户属性", width=14),
    Column("贫困户状态", width=16),
    Column("主要致贫原因", width=12),
    Column("识别年度", Kind.integer, 8),
    Column("脱贫年度", Kind.integer, 8),
    Column("基期年度", Kind.integer, 8),
    Column("基期人均纯收入(元)", Kind.money, 14),
    Column("最新年度", Kind.integer, 8),
    Column("最新人均纯收入(元)", Kind.money, 14),
    Column("人均纯收入变化(元)", Kind.money, 14),
    Column("人均纯收入变化率(%)", Kind.percent, 12),
    Column("当年贫困线(元)", Kind.money, 12),
    Column("当年监测标准(元)", Kind.money, 12),
    # A threshold carried forward: the earlier year it is of (empty when of the year itself).
    Column("监测标准沿用年度", Kind.integer, 10),
    Column("高于贫困线(元)", Kind.money, 12),
    *(Column(label, width=10) for label in INDICATOR_LABELS.values()),
    Column("达到退出标准", width=8),
    Column("未达退出标准原因", width=40),
    Column("帮扶措施数", Kind.integer, 8),
    *(Column(f"措施{label}", Kind.integer, 8) for label in MEASURE_STATUS_LABELS.values()),
    Column("逾期措施", Kind.integer, 8),
    Column("计划资金(元)", Kind.money, 12),
    Column("已用资金(元)", Kind.money, 12),
    Column("走访次数", Kind.integer, 8),
    Column(f"近{rules.RECENT_VISIT_DAYS}天走访次数", Kind.integer, 10),
    Column("最近走访时间", Kind.timestamp, 17),
    Column("走访逾期", width=8),
    Column("风险标识", width=30),
    # The household's latest monitoring case, an open one first (防返贫监测).
    Column("监测对象类别", width=14),
    Column("监测状态", width=16),
    Column("识别监测日期", Kind.date, 12),
    Column("风险消除日期", Kind.date, 12),
    Column("风险消除方式", width=10),
    Column("户ID", width=36),
)

CASE_COLUMNS: tuple[Column, ...] = (
    Column("户编号", Kind.identifier, 20),
    Column("村代码", Kind.identifier, 14),
    Column("村名", width=14),
    Column("户主姓名", width=10),
    Column("户主身份证号", Kind.identifier, 20),
    Column("联系电话", Kind.identifier, 14),
    Column("户类别", width=10),
    Column("监测对象类别", width=14),
    Column("风险类型", width=30),
    Column("发现方式", width=14),
    Column("发现日期", Kind.date, 12),
    Column("监测状态", width=16),
    Column("识别监测日期", Kind.date, 12),
    Column("风险消除日期", Kind.date, 12),
    Column("风险消除方式", width=10),
    Column("程序步骤数", Kind.integer, 8),
    Column("最近步骤", width=22),
    Column("最近步骤时间", Kind.timestamp, 17),
    Column("户ID", width=36),
    Column("监测ID", width=36),
)

Cell = str | int | Decimal | datetime | date | None


def _whole(value: Any) -> int:
    """A count or a sum from the database (PostgreSQL sums bigints as numeric); NULL is 0."""
    return int(value or 0)


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen).scaleb(-2)


def _label(labels: dict[Any, str], value: str | None) -> str | None:
    """The Chinese label of a code; an unknown code as it is (the export never fails on it)."""
    if value is None:
        return None
    try:
        return labels[value]
    except KeyError:
        return value


def indicator_state(ok_rank: int | None, not_ok_rank: int | None) -> Check:
    """The latest assessment from the rank (1 = newest visit) of the newest ok and not_ok."""
    if ok_rank is None and not_ok_rank is None:
        return Check.unknown
    if not_ok_rank is None or (ok_rank is not None and ok_rank < not_ok_rank):
        return Check.ok
    return Check.not_ok


def _masked(row: Any, reveal: bool) -> tuple[str | None, str | None]:
    """The head's ID number and the phone, masked unless `reveal`."""
    id_number, phone = row.head_id_number, row.phone
    return (
        (id_number if reveal else id_numbers.mask(id_number)) if id_number else None,
        (phone if reveal else id_numbers.mask_phone(phone)) if phone else None,
    )


def _local(moment: datetime | None, tz: timezone) -> datetime | None:
    return None if moment is None else moment.astimezone(tz).replace(tzinfo=None)


def exit_reasons(row: Any) -> list[str]:
    """Why the household may not exit: the exit rule's reasons (the household progress's codes,
    one label each), as the SQL form of the rule found them."""
    return [EXIT_BLOCK_LABELS[block] for block in ExitBlock if getattr(row, f"exit_{block}")]


@dataclass(frozen=True)
class RowContext:
    principal: Principal
    village_names: dict[str, str]
    tz: timezone


def cells(row: Any, case: Any, context: RowContext) -> list[Cell]:
    """One household's cells, in COLUMNS order; `case` holds its origin and latest case (see
    `app.exports.service.household_cases`)."""
    id_number, phone = _masked(row, context.principal.may_see_pii(row.village_code))
    # Off the register (一般农户) there is no exit to assess.
    registered = case is None or case.origin != Origin.ordinary
    states = {
        name: indicator_state(getattr(row, f"ok_{name}"), getattr(row, f"not_ok_{name}"))
        for name in INDICATORS
    }
    eligible = bool(row.exit_eligible)
    baseline, latest = row.baseline, row.latest
    change = latest - baseline if latest is not None and baseline is not None else None
    by_status = {status: _whole(getattr(row, f"measures_{status}")) for status in MeasureStatus}
    flags = [label for flag, label in FLAG_LABELS.items() if getattr(row, f"flag_{flag}")]
    return [
        row.number,
        row.village_code[:6],
        row.village_code,
        context.village_names.get(row.village_code[:12]),  # a natural village's village
        row.group_name,
        row.head_name,
        id_number,
        phone,
        _whole(row.size),
        _label(ORIGIN_LABELS, case.origin if case is not None else None),
        _label(ATTRIBUTE_LABELS, row.attribute),
        _label(STATUS_LABELS, row.status),
        _label(CAUSE_LABELS, row.main_cause),
        row.identified_year,
        row.exit_year,
        row.baseline_year,
        _yuan(baseline),
        row.latest_year,
        _yuan(latest),
        _yuan(change),
        # As the household progress: relative to the size of the baseline.
        rules.percent(change, abs(baseline)) + 0 if change is not None and baseline else None,
        _yuan(row.poverty_line),
        _yuan(row.monitoring_threshold),
        row.monitoring_threshold_year
        if row.monitoring_threshold_year is not None
        and row.monitoring_threshold_year != row.latest_year
        else None,
        _yuan(latest - row.poverty_line)
        if latest is not None and row.poverty_line is not None
        else None,
        *(CHECK_LABELS[states[name]] for name in INDICATORS),
        (YES if eligible else NO) if registered else None,
        None if eligible or not registered else "；".join(exit_reasons(row)),
        sum(by_status.values()),
        *by_status.values(),
        _whole(row.overdue),
        _yuan(_whole(row.funds)),
        _yuan(_whole(row.funds_spent)),
        _whole(row.visits),
        _whole(row.recent_visits),
        _local(row.last_visited_at, context.tz),
        YES if row.flag_visit_overdue else NO,
        "、".join(flags) or None,
        *(
            (
                _label(CATEGORY_LABELS, case.category),
                _label(CASE_STATUS_LABELS, case.status),
                case.identified_on,
                case.cleared_on,
                _label(CLEARING_METHOD_LABELS, case.clearing_method),
            )
            if case is not None
            else (None,) * 5
        ),
        str(row.household_id),
    ]


def case_cells(row: Any, context: RowContext) -> list[Cell]:
    """One monitoring case's cells, in CASE_COLUMNS order."""
    id_number, phone = _masked(row, context.principal.may_see_pii(row.village_code))
    last_step = None
    if row.last_step is not None:
        last_step = (
            f"{_label(STEP_LABELS, row.last_step)}({_label(DECISION_LABELS, row.last_decision)})"
        )
    return [
        row.number,
        row.village_code,
        context.village_names.get(row.village_code[:12]),
        row.head_name,
        id_number,
        phone,
        _label(ORIGIN_LABELS, row.origin),
        _label(CATEGORY_LABELS, row.category),
        "、".join(str(_label(RISK_TYPE_LABELS, risk)) for risk in row.risk_types or []) or None,
        _label(FOUND_VIA_LABELS, row.found_via),
        row.found_on,
        _label(CASE_STATUS_LABELS, row.status),
        row.identified_on,
        row.cleared_on,
        _label(CLEARING_METHOD_LABELS, row.clearing_method),
        _whole(row.steps),
        last_step,
        _local(row.last_taken_at, context.tz),
        str(row.household_id),
        str(row.case_id),
    ]


def tz_of(offset_minutes: int) -> timezone:
    return UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
