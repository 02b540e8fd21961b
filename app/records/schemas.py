"""Bodies of the field records: what the phone sends (…Write) and what the API shows (…Public)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
)

from app.core import i18n
from app.core.money import MoneyStr, Yuan
from app.core.types import Coordinate, NoNul, UtcDatetime
from app.households.privacy import COARSE_DESCRIPTION, SCRUB_DESCRIPTION
from app.records.vocabulary import (
    Check,
    Crs,
    MeasureCategory,
    MeasureStatus,
    PhotoTag,
    SnapshotKind,
    VisitMode,
)

Text = Annotated[str, StringConstraints(max_length=10_000), NoNul]
Sha256 = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{64}$"),
    AfterValidator(str.lower),
    Field(
        description="SHA-256 of the photo file, hex",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    ),
]
# Strict: a JSON integer only (not true, not 100.0, not "3"): a revision is counted, not parsed.
Revision = Annotated[
    int,
    Strict(),
    Field(ge=1, le=1_000_000, description="1 on creation, +1 on each edit on the phone"),
]


class PhotoRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: Sha256
    tag: PhotoTag
    caption: Annotated[str, StringConstraints(max_length=200), NoNul] | None = None
    measure_id: uuid.UUID | None = Field(
        default=None, description="The measure this photo documents (before/after pairs)."
    )


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Coordinate = Field(ge=-90, le=90, examples=[36.2356])
    lon: Coordinate = Field(ge=-180, le=180, examples=[115.6718])
    accuracy_m: Coordinate | None = Field(default=None, ge=0, le=100_000, examples=[12.5])
    crs: Crs = Field(default=Crs.wgs84, description="wgs84 (GPS), gcj02 or bd09 (Chinese map SDKs)")


class Checks(BaseModel):
    """两不愁三保障 and safe drinking water, as found on the visit."""

    model_config = ConfigDict(extra="forbid")

    food: Check = Check.unknown
    clothing: Check = Check.unknown
    education: Check = Check.unknown
    medical: Check = Check.unknown
    housing: Check = Check.unknown
    water: Check = Check.unknown


class RecordWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revision: Revision
    household_id: uuid.UUID


_VISIT_EXAMPLE: dict[str, Any] = {
    "revision": 1,
    "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "visited_at": "2026-11-20T09:30:00+08:00",
    "mode": "in_home",
    "location": {"lat": 36.2356, "lon": 115.6718, "accuracy_m": 12.5, "crs": "wgs84"},
    "address": "燕店镇王庄村三组",
    "findings": "户主慢性病用药正常, 光伏收益已到账",
    "requests": "希望安排公益岗位",
    "follow_up": "联系镇人社所",
    "checks": {
        "food": "ok",
        "clothing": "ok",
        "education": "ok",
        "medical": "ok",
        "housing": "ok",
        "water": "ok",
    },
    "photos": [
        {
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "tag": "sign_in",
            "caption": "入户签到",
        }
    ],
}


class VisitWrite(RecordWrite):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_VISIT_EXAMPLE]})

    visited_at: UtcDatetime = Field(description="Device clock, with its offset.")
    mode: VisitMode
    location: Location | None = None
    address: Annotated[str, StringConstraints(max_length=500), NoNul] | None = None
    findings: Text | None = None
    requests: Text | None = Field(default=None, description="群众诉求")
    follow_up: Text | None = None
    checks: Checks = Field(default_factory=Checks)
    photos: list[PhotoRef] = Field(default_factory=list, max_length=50)


class RecordPublic(BaseModel):
    id: uuid.UUID
    revision: int
    household_id: uuid.UUID
    author_id: uuid.UUID
    device_id: str | None
    received_at: datetime = Field(description="Server time of the first receipt.")
    updated_at: datetime = Field(description="Server time of the last accepted revision.")


class VisitPublic(RecordPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_VISIT_EXAMPLE,
                    "id": "2b7e4c1a-0d9f-4e3b-8a6c-5f1e2d3c4b5a",
                    "author_id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
                    "device_id": "android-7f3a9c",
                    "received_at": "2026-11-21T12:00:03Z",
                    "updated_at": "2026-11-21T12:00:03Z",
                    "flags": [],
                }
            ]
        }
    )

    visited_at: datetime
    mode: VisitMode
    location: Location | None = Field(
        description="Where the visit was recorded (the phone's GPS). " + COARSE_DESCRIPTION
    )
    address: str | None = Field(
        description="Null without `pii:read` for the household's village, as it places the "
        "house; a revision from such a caller with a null address keeps the stored one."
    )
    findings: str | None = Field(description=SCRUB_DESCRIPTION)
    requests: str | None = Field(description="群众诉求. " + SCRUB_DESCRIPTION)
    follow_up: str | None = Field(description=SCRUB_DESCRIPTION)
    checks: Checks
    photos: list[PhotoRef] = Field(description="Captions: " + SCRUB_DESCRIPTION)
    flags: list[str] = Field(description="`visited_long_ago`: visited_at is over a year old.")


COMPONENTS = (
    "wage_income",
    "business_income",
    "business_expenses",
    "property_dividend",
    "property_other",
    "transfer_family_planning",
    "transfer_dibao",
    "transfer_tekun",
    "transfer_pension",
    "transfer_ecological",
    "transfer_other",
    "transfer_education_aid",
    "transfer_medical_reimbursement",
    "transfer_housing_subsidy",
    "transfer_one_off_relief",
)
"""The components of net income (all add to it but business_expenses, which is subtracted)."""
INCOME_ITEMS = tuple(name for name in COMPONENTS if name != "business_expenses")
"""The components that add to net income: the items a region may leave out for monitoring."""
RIGID_EXPENSES = ("medical_out_of_pocket", "education_expenses", "other_rigid_expenses")
"""Rigid expenses (刚性支出): not subtracted from net income; rigid_expenses is their sum."""
_SNAPSHOT_EXAMPLE: dict[str, Any] = {
    "revision": 1,
    "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "year": 2025,
    "kind": "annual",
    "household_size": 3,
    "recorded_at": "2025-12-10T15:00:00+08:00",
    "wage_income": "12000.00",
    "business_income": 3500.5,
    "business_expenses": "800",
    "property_dividend": "600.00",
    "transfer_dibao": "3960.00",
    "transfer_pension": "1800.00",
}


class IncomeSnapshotWrite(RecordWrite):
    """Components in yuan (JSON numbers or decimal strings, at most two decimals); omitted = 0."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_SNAPSHOT_EXAMPLE]})

    year: int = Field(ge=2010, le=2100)
    kind: SnapshotKind
    household_size: int = Field(ge=1, le=30, description="People the income is divided by.")
    recorded_at: UtcDatetime
    wage_income: Yuan = Field(default=Decimal(0), description="工资性收入")
    business_income: Yuan = Field(default=Decimal(0), description="生产经营性收入")
    business_expenses: Yuan = Field(default=Decimal(0), description="生产经营性支出 (subtracted)")
    property_dividend: Yuan = Field(default=Decimal(0), description="资产收益分红")
    property_other: Yuan = Field(
        default=Decimal(0), description="other property income, e.g. land rent"
    )
    transfer_family_planning: Yuan = Field(default=Decimal(0), description="计划生育金")
    transfer_dibao: Yuan = Field(default=Decimal(0), description="低保金")
    transfer_tekun: Yuan = Field(default=Decimal(0), description="特困供养金")
    transfer_pension: Yuan = Field(default=Decimal(0), description="养老保险金")
    transfer_ecological: Yuan = Field(default=Decimal(0), description="生态补偿金")
    transfer_other: Yuan = Field(default=Decimal(0), description="other transfers")
    transfer_education_aid: Yuan = Field(default=Decimal(0), description="教育救助/助学金")
    transfer_medical_reimbursement: Yuan = Field(
        default=Decimal(0), description="医疗救助/报销 (reimbursements paid to the household)"
    )
    transfer_housing_subsidy: Yuan = Field(default=Decimal(0), description="住房补助 (危房改造等)")
    transfer_one_off_relief: Yuan = Field(default=Decimal(0), description="临时救助等一次性救助")
    medical_out_of_pocket: Yuan = Field(
        default=Decimal(0),
        description="医疗自付费用: medical costs paid after reimbursement (a rigid expense, not "
        "subtracted from net income)",
    )
    education_expenses: Yuan = Field(
        default=Decimal(0), description="教育支出 (a rigid expense, not subtracted)"
    )
    other_rigid_expenses: Yuan = Field(
        default=Decimal(0), description="其他刚性支出 (a rigid expense, not subtracted)"
    )


class IncomeSnapshotPublic(RecordPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_SNAPSHOT_EXAMPLE,
                    "id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
                    "business_income": "3500.50",
                    "business_expenses": "800.00",
                    "property_other": "0.00",
                    "transfer_family_planning": "0.00",
                    "transfer_tekun": "0.00",
                    "transfer_ecological": "0.00",
                    "transfer_other": "0.00",
                    "transfer_education_aid": "0.00",
                    "transfer_medical_reimbursement": "0.00",
                    "transfer_housing_subsidy": "0.00",
                    "transfer_one_off_relief": "0.00",
                    "medical_out_of_pocket": "0.00",
                    "education_expenses": "0.00",
                    "other_rigid_expenses": "0.00",
                    "rigid_expenses": "0.00",
                    "property_income": "600.00",
                    "transfer_income": "5760.00",
                    "net_income": "21060.50",
                    "per_capita_income": "7020.17",
                    "poverty_line": None,
                    "monitoring_threshold": "6000.00",
                    "monitoring_threshold_year": 2021,
                    "above_poverty_line": None,
                    "monitoring_income": "7020.17",
                    "above_monitoring_threshold": True,
                    "author_id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
                    "device_id": "android-7f3a9c",
                    "received_at": "2025-12-11T02:00:00Z",
                    "updated_at": "2025-12-11T02:00:00Z",
                }
            ]
        }
    )

    year: int
    kind: SnapshotKind
    household_size: int
    recorded_at: datetime
    wage_income: MoneyStr
    business_income: MoneyStr
    business_expenses: MoneyStr
    property_dividend: MoneyStr
    property_other: MoneyStr
    transfer_family_planning: MoneyStr
    transfer_dibao: MoneyStr
    transfer_tekun: MoneyStr
    transfer_pension: MoneyStr
    transfer_ecological: MoneyStr
    transfer_other: MoneyStr
    transfer_education_aid: MoneyStr
    transfer_medical_reimbursement: MoneyStr
    transfer_housing_subsidy: MoneyStr
    transfer_one_off_relief: MoneyStr
    medical_out_of_pocket: MoneyStr
    education_expenses: MoneyStr
    other_rigid_expenses: MoneyStr
    rigid_expenses: MoneyStr = Field(
        description="medical_out_of_pocket + education_expenses + other_rigid_expenses (刚性支出; "
        "not subtracted from net income)"
    )
    property_income: MoneyStr = Field(description="property_dividend + property_other")
    transfer_income: MoneyStr = Field(description="the sum of the ten transfers")
    net_income: MoneyStr = Field(
        description="wage + business + property + transfer income − business_expenses"
    )
    per_capita_income: MoneyStr = Field(
        description="net_income ÷ household_size, rounded half up (away from zero) to the fen"
    )
    poverty_line: MoneyStr | None = Field(
        description="The line for this year in this region (a region's own overrides the "
        "national); always null after 2020: there is no poverty line after 2020."
    )
    monitoring_threshold: MoneyStr | None = Field(
        description="The monitoring threshold (防返贫监测范围) in force for this year here."
    )
    monitoring_threshold_year: int | None = Field(
        description="The year of the threshold row used: earlier than `year` when the threshold "
        "was carried forward from an earlier year; null when none is known."
    )
    above_poverty_line: bool | None = Field(
        description="per_capita_income > poverty_line; null when no line is known for the year "
        "(always after 2020)."
    )
    monitoring_income: MoneyStr = Field(
        description="Per-capita income judged for monitoring: net income without the items the "
        "region leaves out (default none), ÷ household_size, rounded half up to the fen."
    )
    above_monitoring_threshold: bool | None = Field(
        description="monitoring_income > monitoring_threshold; null when no threshold is known."
    )


class ProgressReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reported_at: UtcDatetime
    progress_pct: int = Field(ge=0, le=100)
    note: Annotated[str, StringConstraints(max_length=2000), NoNul] | None = None
    photos: list[PhotoRef] = Field(default_factory=list, max_length=20)


_MEASURE_EXAMPLE: dict[str, Any] = {
    "revision": 2,
    "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "category": "housing_safety",
    "title": "危房改造 (C级)",
    "details": "原址翻建砖混结构住房 60 平方米",
    "funds_yuan": "20000.00",
    "funds_spent_yuan": "12000.00",
    "start_date": "2026-04-01",
    "due_date": "2026-10-31",
    "status": "in_progress",
    "progress_pct": 60,
    "progress_reports": [
        {
            "reported_at": "2026-07-15T10:00:00+08:00",
            "progress_pct": 60,
            "note": "主体完工",
            "photos": [],
        }
    ],
}


class MeasureWrite(RecordWrite):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_MEASURE_EXAMPLE]})

    category: MeasureCategory
    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
    ]
    details: Text | None = None
    funds_yuan: Yuan | None = Field(default=None, description="Funds planned (yuan).")
    funds_spent_yuan: Yuan | None = Field(default=None, description="Funds spent so far (yuan).")
    start_date: date | None = None
    due_date: date | None = None
    status: MeasureStatus = MeasureStatus.planned
    progress_pct: int = Field(default=0, ge=0, le=100)
    progress_reports: list[ProgressReport] = Field(default_factory=list, max_length=200)

    @field_validator("due_date")
    @classmethod
    def _due_after_start(cls, due: date | None, info: Any) -> date | None:
        start = info.data.get("start_date")
        if due is not None and start is not None and due < start:
            raise ValueError(i18n.Text("due_date is before start_date"))
        return due


class MeasurePublic(RecordPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_MEASURE_EXAMPLE,
                    "id": "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b",
                    "author_id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
                    "device_id": "android-7f3a9c",
                    "received_at": "2026-04-02T01:00:00Z",
                    "updated_at": "2026-07-15T03:00:00Z",
                }
            ]
        }
    )

    category: MeasureCategory
    title: str = Field(description=SCRUB_DESCRIPTION)
    details: str | None = Field(description=SCRUB_DESCRIPTION)
    funds_yuan: MoneyStr | None
    funds_spent_yuan: MoneyStr | None
    start_date: date | None
    due_date: date | None
    status: MeasureStatus
    progress_pct: int
    progress_reports: list[ProgressReport] = Field(
        description="Notes and photo captions: " + SCRUB_DESCRIPTION
    )
