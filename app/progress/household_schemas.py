"""The progress document of one household: what the API shows (money as yuan strings)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.i18n import Text
from app.core.money import MoneyStr
from app.monitoring.vocabulary import (
    AlertKind,
    CaseCategory,
    CaseStatus,
    ClearingBlock,
    Department,
    RiskType,
)
from app.records.vocabulary import Check, MeasureStatus


class ExitBlock(StrEnum):
    """Why a household may not exit yet (one reason per failed condition)."""

    no_snapshot = "no_snapshot"  # 无收入核算
    income_below_line = "income_below_line"  # 人均纯收入未超过贫困线
    income_not_stable = "income_not_stable"  # 收入未稳定超过贫困线 (最近两个年度核算)
    indicator_not_ok = "indicator_not_ok"  # 两不愁三保障/饮水 未达标
    indicator_unknown = "indicator_unknown"  # 两不愁三保障/饮水 未核实
    education_not_secured = "education_not_secured"  # 义务教育阶段成员未在校
    medical_not_secured = "medical_not_secured"  # 成员未参加基本医疗保险


EXIT_BLOCK_LABELS = {
    ExitBlock.no_snapshot: "无收入核算",
    ExitBlock.income_below_line: "人均纯收入未超过贫困线",
    ExitBlock.income_not_stable: "最近两个年度人均纯收入未稳定超过贫困线",
    ExitBlock.indicator_not_ok: "两不愁三保障及饮水安全未达标",
    ExitBlock.indicator_unknown: "两不愁三保障及饮水安全未核实",
    ExitBlock.education_not_secured: "义务教育阶段成员未在校",
    ExitBlock.medical_not_secured: "成员未参加基本医疗保险",
}


class RiskCode(StrEnum):
    """Signals of a risk of (returning to) poverty (防返贫监测)."""

    below_monitoring_threshold = "below_monitoring_threshold"  # 低于监测范围
    income_drop = "income_drop"  # 收入骤减
    indicator_lost = "indicator_lost"  # 保障由达标变为未达标
    measure_overdue = "measure_overdue"  # 帮扶措施逾期
    photos_missing = "photos_missing"  # 照片未上传
    visit_overdue = "visit_overdue"  # 走访逾期


class SnapshotFigure(BaseModel):
    snapshot_id: uuid.UUID
    year: int
    per_capita: MoneyStr = Field(description="Per-capita net income (yuan).")


class IncomeLatestYear(BaseModel):
    year: int = Field(description="Year of the latest snapshot.")
    poverty_line: MoneyStr | None = Field(description="Null when no line is known.")
    monitoring_threshold: MoneyStr | None = Field(description="Null when none is known.")
    margin_to_line: MoneyStr | None = Field(description="Latest per capita − poverty line.")
    margin_to_threshold: MoneyStr | None = Field(
        description="Latest per capita − monitoring threshold."
    )


class IncomeProgress(BaseModel):
    """Every field is null when the household has no income snapshot."""

    baseline: SnapshotFigure | None = Field(
        description="The earliest `baseline` snapshot; without one, the earliest snapshot."
    )
    latest: SnapshotFigure | None = Field(
        description="By year, then recorded_at, then id, the last one."
    )
    change: MoneyStr | None = Field(description="latest − baseline per capita (yuan).")
    change_pct: float | None = Field(
        description="change ÷ |baseline per capita| in percent, one decimal (half up); null "
        "when the baseline per capita is 0."
    )
    series: list[SnapshotFigure] | None = Field(
        description="Per year, ascending: the latest snapshot of the year."
    )
    latest_year: IncomeLatestYear | None


class IndicatorAssessment(BaseModel):
    value: Check = Field(description="The latest ok/not_ok; `unknown` if never assessed.")
    assessed_at: datetime | None = Field(description="visited_at of that visit.")
    visit_id: uuid.UUID | None


class Guarantees(BaseModel):
    """两不愁三保障 and safe drinking water: each indicator's latest assessment on a visit."""

    food: IndicatorAssessment
    clothing: IndicatorAssessment
    education: IndicatorAssessment
    medical: IndicatorAssessment
    housing: IndicatorAssessment
    water: IndicatorAssessment


class OverdueMeasure(BaseModel):
    measure_id: uuid.UUID
    title: str
    due_date: date
    status: MeasureStatus


class MeasurePhoto(BaseModel):
    sha256: str
    held: bool = Field(description="Whether the server holds the photo's bytes.")


class MeasurePhotoPair(BaseModel):
    measure_id: uuid.UUID
    title: str
    before: list[MeasurePhoto]
    after: list[MeasurePhoto]


class MeasuresProgress(BaseModel):
    total: int
    by_status: dict[MeasureStatus, int] = Field(description="Every status, zero included.")
    funds_planned: MoneyStr = Field(description="Sum of the measures' funds (yuan).")
    funds_spent: MoneyStr = Field(description="Sum of the funds spent so far (yuan).")
    overdue: list[OverdueMeasure] = Field(
        description="Due before today (UTC) and neither done nor cancelled; by due date."
    )
    photo_pairs: list[MeasurePhotoPair] = Field(
        description="Before/after photos of each measure that has some; by title."
    )


class VisitsProgress(BaseModel):
    total: int
    last_visited_at: datetime | None
    days_since_last: int | None = Field(
        description="Calendar days (UTC) from the last visit to today; null if never visited."
    )
    last_90_days: int = Field(description="Visits in the last 90 days.")
    overdue: bool = Field(description="Never visited, or days_since_last > cadence_days.")
    cadence_days: int


class ExitReason(BaseModel):
    code: ExitBlock
    detail: Text = Field(description="What is missing, for people (in the request's language).")


class ExitAssessment(BaseModel):
    eligible: bool = Field(description="True when no reason blocks the household's exit.")
    reasons: list[ExitReason]


class RiskFlag(BaseModel):
    code: RiskCode
    evidence: list[str] = Field(description="Ids of the snapshots, visits or records concerned.")
    detail: Text = Field(description="What was found, for people (in the request's language).")
    indicator: str | None = Field(
        default=None, description="`indicator_lost`: the indicator (food, housing, …); else null"
    )


class MonitoringCaseSummary(BaseModel):
    id: uuid.UUID
    category: CaseCategory
    status: CaseStatus
    identified_on: date | None
    risk_types: list[RiskType]


class ClearingReasonPublic(BaseModel):
    code: ClearingBlock
    detail: Text = Field(description="What is missing, for people (in the request's language).")


class ClearingAssessment(BaseModel):
    eligible: bool = Field(description="True when no reason blocks the clearing of the risk.")
    reasons: list[ClearingReasonPublic] = Field(
        description="The clearing rule's reasons, one per code, in the order of the codes."
    )


class OpenAlert(BaseModel):
    id: uuid.UUID
    department: Department
    kind: AlertKind
    occurred_on: date


class HouseholdMonitoring(BaseModel):
    case: MonitoringCaseSummary | None = Field(
        description="The household's open case (neither cleared nor rejected), or null."
    )
    clearing: ClearingAssessment | None = Field(
        description="The clearing rule as of today for an open case identified as a monitoring "
        "object (identified, or in a clearing review); null otherwise: without such a case "
        "there is no risk to clear."
    )
    open_alerts: list[OpenAlert] = Field(
        description="Department alerts matched to the household, not yet verified; by date."
    )


_H = "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f"
_S_PREV = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e41"
_S_LATEST = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e42"
_S_BASE = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e40"
_V_OK = "2b7e4c1a-0d9f-4e3b-8a6c-5f1e2d3c4b51"
_V_LAST = "2b7e4c1a-0d9f-4e3b-8a6c-5f1e2d3c4b52"
_M = "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
_SHA_BEFORE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_SHA_AFTER = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"


def _ok(visit_id: str) -> dict[str, Any]:
    return {"value": "ok", "assessed_at": "2026-01-10T02:00:00Z", "visit_id": visit_id}


_EXAMPLE: dict[str, Any] = {
    "household_id": _H,
    "as_of": "2026-03-15",
    "income": {
        "baseline": {"snapshot_id": _S_BASE, "year": 2023, "per_capita": "3000.00"},
        "latest": {"snapshot_id": _S_LATEST, "year": 2025, "per_capita": "4000.00"},
        "change": "1000.00",
        "change_pct": 33.3,
        "series": [
            {"snapshot_id": _S_BASE, "year": 2023, "per_capita": "3000.00"},
            {"snapshot_id": _S_LATEST, "year": 2025, "per_capita": "4000.00"},
        ],
        "latest_year": {
            "year": 2025,
            "poverty_line": "4000.00",
            "monitoring_threshold": "7000.00",
            "margin_to_line": "0.00",
            "margin_to_threshold": "-3000.00",
        },
    },
    "guarantees": {
        "food": _ok(_V_LAST),
        "clothing": _ok(_V_LAST),
        "education": _ok(_V_LAST),
        "medical": _ok(_V_LAST),
        "housing": {"value": "not_ok", "assessed_at": "2026-01-10T02:00:00Z", "visit_id": _V_LAST},
        "water": {"value": "unknown", "assessed_at": None, "visit_id": None},
    },
    "measures": {
        "total": 1,
        "by_status": {
            "planned": 0,
            "not_started": 0,
            "in_progress": 1,
            "done": 0,
            "cancelled": 0,
        },
        "funds_planned": "20000.00",
        "funds_spent": "12000.00",
        "overdue": [
            {
                "measure_id": _M,
                "title": "危房改造",
                "due_date": "2026-01-31",
                "status": "in_progress",
            }
        ],
        "photo_pairs": [
            {
                "measure_id": _M,
                "title": "危房改造",
                "before": [{"sha256": _SHA_BEFORE, "held": True}],
                "after": [{"sha256": _SHA_AFTER, "held": False}],
            }
        ],
    },
    "visits": {
        "total": 2,
        "last_visited_at": "2026-01-10T02:00:00Z",
        "days_since_last": 64,
        "last_90_days": 1,
        "overdue": True,
        "cadence_days": 30,
    },
    "exit": {
        "eligible": False,
        "reasons": [
            {
                "code": "income_below_line",
                "detail": "per-capita income 4000.00 yuan of 2025 does not exceed the poverty "
                "line 4000.00 yuan",
            },
            {
                "code": "income_not_stable",
                "detail": "annual snapshots of 1 year(s): the two latest years' are needed, "
                "both above the line",
            },
            {"code": "indicator_not_ok", "detail": "housing: not_ok at the latest assessment"},
            {"code": "indicator_unknown", "detail": "water: never assessed on a visit"},
        ],
    },
    "risk_flags": [
        {
            "code": "below_monitoring_threshold",
            "evidence": [_S_LATEST],
            "detail": "per-capita income 4000.00 yuan of 2025 is below the monitoring "
            "threshold 7000.00 yuan",
            "indicator": None,
        },
        {
            "code": "indicator_lost",
            "evidence": [_V_OK, _V_LAST],
            "detail": "housing: ok on 2025-11-20, not_ok on 2026-01-10",
            "indicator": "housing",
        },
        {
            "code": "measure_overdue",
            "evidence": [_M],
            "detail": "1 measure(s) past their due date and neither done nor cancelled",
            "indicator": None,
        },
        {
            "code": "photos_missing",
            "evidence": [_M],
            "detail": "1 photo(s) referenced by 1 record(s) not uploaded yet",
            "indicator": None,
        },
        {
            "code": "visit_overdue",
            "evidence": [_V_LAST],
            "detail": "last visit 64 days ago (cadence 30 days)",
            "indicator": None,
        },
    ],
    "monitoring": {
        "case": {
            "id": "5a4f3e2d-1c0b-4a9f-8e7d-6c5b4a3f2e1d",
            "category": "unstable_lifted",
            "status": "identified",
            "identified_on": "2025-12-01",
            "risk_types": ["illness"],
        },
        "clearing": {
            "eligible": False,
            "reasons": [
                {
                    "code": "too_soon",
                    "detail": "identified on 2025-12-01, 104 days ago: clearing needs at least 182",
                },
                {
                    "code": "income_below_threshold",
                    "detail": "monitoring income 4000.00 yuan per person of 2025 does not "
                    "exceed the monitoring threshold 7000.00 yuan",
                },
                {
                    "code": "income_not_stable",
                    "detail": "no snapshot recorded since 2025-12-01 has a monitoring income "
                    "above its year's threshold; two at least 182 days apart are needed",
                },
                {
                    "code": "guarantee_not_secured",
                    "detail": "latest visit (2026-01-10): housing, water not ok",
                },
            ],
        },
        "open_alerts": [
            {
                "id": "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",
                "department": "medical_insurance",
                "kind": "large_medical_expense",
                "occurred_on": "2026-02-20",
            }
        ],
    },
}


class HouseholdProgress(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    household_id: uuid.UUID
    as_of: date = Field(description="Today (UTC): the date overdue measures and visits count to.")
    income: IncomeProgress
    guarantees: Guarantees
    measures: MeasuresProgress
    visits: VisitsProgress
    exit: ExitAssessment = Field(description="The household exit rule (脱贫标准) as of today.")
    risk_flags: list[RiskFlag] = Field(description="By code, then evidence.")
    monitoring: HouseholdMonitoring = Field(
        description="防返贫监测: the open case, whether its risk may be cleared, open alerts."
    )
