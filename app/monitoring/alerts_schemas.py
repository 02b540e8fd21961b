"""Department alerts (部门筛查预警) as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.i18n import Text
from app.core.money import MoneyStr
from app.households.privacy import SCRUB_DESCRIPTION
from app.monitoring.vocabulary import AlertKind, AlertOutcome, AlertStatus, Department

_ALERT_EXAMPLE: dict[str, Any] = {
    "id": "0f6b1c52-7d0e-4c1a-9a57-2b9c8d7e6f50",
    "county_code": "371522000000",
    "village_code": "371522101201",
    "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "member_id": "0c3b7d9e-2f4a-4b1c-9d8e-7f6a5b4c3d2e",
    "member_name": "李秀英",
    "member_id_number": "440524********0014",
    "department": "medical_insurance",
    "kind": "large_medical_expense",
    "amount": "28650.00",
    "occurred_on": "2026-03-02",
    "note": "住院自付部分",
    "status": "open",
    "outcome": None,
    "case_id": None,
    "verified_by": None,
    "verified_at": None,
    "verify_note": None,
    "revision": 1,
    "imported_at": "2026-03-10T02:15:00Z",
    "pii_masked": True,
}


class AlertPublic(BaseModel):
    """A department's alert about one member of a household, and its verification."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ALERT_EXAMPLE]})

    id: uuid.UUID
    county_code: str
    village_code: str = Field(description="The household's village when the alert was imported.")
    household_id: uuid.UUID
    member_id: uuid.UUID
    member_name: str
    member_id_number: str | None = Field(
        description="Masked (371522********123X) without pii:read."
    )
    department: Department
    kind: AlertKind
    amount: MoneyStr | None = Field(description="Yuan, as the department reported it.")
    occurred_on: date
    note: str | None = Field(description="The department's note. " + SCRUB_DESCRIPTION)
    status: AlertStatus
    outcome: AlertOutcome | None
    case_id: uuid.UUID | None = Field(description="The monitoring case opened (case_opened).")
    verified_by: uuid.UUID | None
    verified_at: datetime | None
    verify_note: str | None = Field(description="The verifier's note. " + SCRUB_DESCRIPTION)
    revision: int = Field(description="Goes up with each change (the change feed's version).")
    imported_at: datetime
    pii_masked: bool = Field(description="True when ID numbers in this alert are masked for you.")


class AlertVerify(BaseModel):
    """What a cadre found when verifying an alert (核实)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcome": "case_opened",
                    "case_id": "3a7e5c2d-1b4f-4e6a-9c8d-7f6e5d4c3b2a",
                    "note": "住院花费较大, 已申报",
                },
                {"outcome": "no_risk", "note": "商业保险已报销大部分"},
            ]
        },
    )

    outcome: AlertOutcome
    case_id: uuid.UUID | None = Field(
        default=None,
        description="Required with case_opened, refused otherwise: a monitoring case of the "
        "alert's household.",
    )
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _case_with_outcome(self) -> Self:
        if self.outcome is AlertOutcome.case_opened and self.case_id is None:
            raise ValueError(Text("case_id is required when the outcome is case_opened"))
        if self.outcome is not AlertOutcome.case_opened and self.case_id is not None:
            raise ValueError(Text("case_id is given only when the outcome is case_opened"))
        return self


class RejectedRow(BaseModel):
    row: int = Field(description="Row number in the file, the header being row 1.")
    field: str = Field(description="The column at fault (`row` when the row as a whole is).")
    reason: str


class AlertImportReport(BaseModel):
    """What an import did. Importing the same file again stores nothing new."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "county_code": "371522000000",
                    "rows": 1204,
                    "matched": 1150,
                    "unmatched": 40,
                    "duplicate": 10,
                    "rejected": 4,
                    "rejected_rows": [
                        {"row": 17, "field": "id_number", "reason": "the check character …"},
                        {"row": 230, "field": "kind", "reason": "unknown kind 'sick'"},
                    ],
                    "dry_run": False,
                }
            ]
        }
    )

    county_code: str
    rows: int = Field(description="Data rows read (the header not counted; blank rows skipped).")
    matched: int = Field(description="New alerts stored: rows matching a current member.")
    unmatched: int = Field(
        description="Valid rows whose ID number no current member under the county holds."
    )
    duplicate: int = Field(description="Rows already stored, or repeated earlier in the file.")
    rejected: int = Field(description="Rows refused: see rejected_rows.")
    rejected_rows: list[RejectedRow] = Field(
        description="The rejected rows in file order, with the reason (the first 1,000; "
        "`rejected` counts them all)."
    )
    dry_run: bool = Field(
        default=False, description="A preview: `matched` alerts would be stored, none was."
    )
