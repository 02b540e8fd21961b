"""Bodies of monitoring cases: what the phone sends (…Write), a step taken, what the API shows."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.core import i18n
from app.core.types import NoNul
from app.households.privacy import SCRUB_DESCRIPTION
from app.monitoring.vocabulary import (
    MAX_RISK_TYPES,
    CaseCategory,
    CaseStatus,
    ClearingMethod,
    Decision,
    FoundVia,
    RiskType,
    Step,
)
from app.records.schemas import PhotoRef, RecordPublic, RecordWrite, Text

Note = Annotated[str, StringConstraints(max_length=2000), NoNul]

_CASE_EXAMPLE: dict[str, Any] = {
    "revision": 1,
    "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "category": "marginal",
    "risk_types": ["illness", "high_rigid_expenses"],
    "found_via": "department_alert",
    "alert_id": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
    "found_on": "2026-03-12",
    "description": "户主 2 月住院, 自付医疗费用约 4.2 万元, 医保部门预警",
    "photos": [
        {
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "tag": "evidence",
            "caption": "住院费用清单",
        }
    ],
}


class MonitoringCaseWrite(RecordWrite):
    """A monitoring case as the phone opens it (申报 / 排查): the risk found, not its procedure."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CASE_EXAMPLE]})

    category: CaseCategory = Field(
        description="unstable_lifted: registered households lifted (with or without support) "
        "only; marginal: ordinary households only; sudden_hardship: any household."
    )
    risk_types: list[RiskType] = Field(
        min_length=1, max_length=MAX_RISK_TYPES, description="1 to 5 distinct risk types."
    )
    found_via: FoundVia
    alert_id: uuid.UUID | None = Field(
        default=None,
        validate_default=True,
        description="The department alert the risk was found through: required with "
        "found_via department_alert, absent otherwise; an alert of the same household.",
    )
    found_on: date = Field(description="When the risk was found; not in the future.")
    description: Text | None = None
    photos: list[PhotoRef] = Field(default_factory=list, max_length=50)

    @field_validator("risk_types")
    @classmethod
    def _distinct(cls, risk_types: list[RiskType]) -> list[RiskType]:
        repeated = sorted({r.value for r in risk_types if risk_types.count(r) > 1})
        if repeated:
            raise ValueError(
                i18n.Text("risk types repeated: {repeated}", repeated=", ".join(repeated))
            )
        return risk_types

    @field_validator("alert_id")
    @classmethod
    def _alert_with_found_via(cls, alert_id: uuid.UUID | None, info: ValidationInfo) -> Any:
        found_via = info.data.get("found_via")
        if found_via is None:
            return alert_id  # found_via is invalid itself: reported there
        if found_via == FoundVia.department_alert and alert_id is None:
            raise ValueError(i18n.Text("a case found through a department alert names the alert"))
        if found_via != FoundVia.department_alert and alert_id is not None:
            raise ValueError(i18n.Text("only a case found via department_alert names an alert"))
        return alert_id


class StepPublic(BaseModel):
    """One step of the procedure, as taken."""

    seq: int = Field(description="1, 2, … in the order taken.")
    step: Step
    decision: Decision
    method: ClearingMethod | None = Field(description="clearance_village_review: how cleared.")
    note: str | None = Field(description=SCRUB_DESCRIPTION)
    actor_id: uuid.UUID
    actor_role: str
    taken_at: datetime
    status_from: CaseStatus
    status_to: CaseStatus


_STEP_EXAMPLE: dict[str, Any] = {
    "seq": 1,
    "step": "village_review",
    "decision": "approve",
    "method": None,
    "note": "村民代表会议评议通过, 公示 5 天无异议",
    "actor_id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
    "actor_role": "first_secretary",
    "taken_at": "2026-03-20T08:00:00Z",
    "status_from": "proposed",
    "status_to": "village_reviewed",
}


class MonitoringCasePublic(RecordPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_CASE_EXAMPLE,
                    "id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "author_id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
                    "device_id": "android-7f3a9c",
                    "received_at": "2026-03-12T09:00:00Z",
                    "updated_at": "2026-03-12T09:00:00Z",
                    "status": "village_reviewed",
                    "identified_on": None,
                    "cleared_on": None,
                    "clearing_method": None,
                    "steps": [_STEP_EXAMPLE],
                }
            ]
        }
    )

    category: CaseCategory
    risk_types: list[RiskType]
    found_via: FoundVia
    alert_id: uuid.UUID | None
    found_on: date
    description: str | None = Field(description=SCRUB_DESCRIPTION)
    photos: list[PhotoRef] = Field(description="Captions: " + SCRUB_DESCRIPTION)
    status: CaseStatus = Field(description="Where the procedure stands; written by the steps.")
    identified_on: date | None = Field(description="The day the county approved it (UTC date).")
    cleared_on: date | None = Field(description="The day the county approved its clearing.")
    clearing_method: ClearingMethod | None
    steps: list[StepPublic] = Field(description="Every step taken, in order; none is deleted.")
    next_step: Step | None = Field(
        default=None,
        description="The step the case waits for (none once cleared or rejected).",
        examples=["town_review"],
    )


class StepCreate(BaseModel):
    """A step of the procedure: identification, then (once identified) clearing."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"step": "village_review", "decision": "approve", "note": "村民代表会议评议通过"},
                {
                    "step": "clearance_village_review",
                    "decision": "approve",
                    "method": "assisted",
                    "note": "收入稳定超过监测范围, 两不愁三保障巩固",
                },
            ]
        },
    )

    step: Step
    decision: Decision
    note: Note | None = None
    method: ClearingMethod | None = Field(
        default=None,
        validate_default=True,
        description="clearance_village_review approved: assisted (帮扶消除) or natural (自然消除); "
        "absent otherwise.",
    )

    @field_validator("method")
    @classmethod
    def _method_with_step(cls, method: ClearingMethod | None, info: ValidationInfo) -> Any:
        step, decision = info.data.get("step"), info.data.get("decision")
        if step is None or decision is None:
            return method  # reported there
        wanted = step == Step.clearance_village_review and decision == Decision.approve
        if wanted and method is None:
            raise ValueError(
                Text("an approved clearance_village_review says how the risk was cleared")
            )
        if not wanted and method is not None:
            raise ValueError(i18n.Text("only an approved clearance_village_review has a method"))
        return method
