"""Data-quality issues as the API shows them."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.i18n import Text
from app.quality.vocabulary import IssueKind, IssueRecordType

_ISSUE_EXAMPLE: dict[str, Any] = {
    "kind": "id_number_invalid",
    "village_code": "371522101201",
    "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "household_number": "3715221012010001",
    "record_type": "member",
    "record_id": "0c3b7d9e-2f4a-4b1c-9d8e-7f6a5b4c3d2e",
    "href": "/api/v1/households/6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f/members/"
    "0c3b7d9e-2f4a-4b1c-9d8e-7f6a5b4c3d2e",
    "reasons": ["check_character"],
    "detail": "李秀英: the check character of the ID number is wrong",
    "id_number_masked": "371522********123X",
}


class QualityIssue(BaseModel):
    """One record that fails one data-quality check (one issue per kind and record)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ISSUE_EXAMPLE]})

    kind: IssueKind
    village_code: str = Field(description="The household's village.")
    household_id: uuid.UUID
    household_number: str = Field(description="户编号")
    record_type: IssueRecordType
    record_id: uuid.UUID = Field(description="The household, member, visit or income snapshot.")
    href: str = Field(description="Where this API serves the record.")
    reasons: list[str] = Field(
        description="Which rules of the kind fired, for kinds with several: id_number_invalid "
        "`format`, `birth_date_not_a_date`, `birth_date_implausible`, `check_character`, "
        "`not_normalized`; id_number_duplicate `other_household`, `same_household`; "
        "head_not_member `no_head_member`, `head_name_differs`; cause_contradicts_members and "
        "cause_repeated the cause codes; income_implausible `negative_net_income`, "
        "`per_capita_above_bound`, `negative_component`, `totals_mismatch`."
    )
    detail: Text = Field(
        description="What is wrong, for people (in the request's language). Never holds an ID "
        "number."
    )
    id_number_masked: str | None = Field(
        default=None,
        description="id_number_invalid and id_number_duplicate: the member's ID number, masked "
        "(371522********123X) for every caller. Open the member for the full number.",
    )


class IssueCounts(BaseModel):
    by_kind: dict[IssueKind, int] = Field(
        description="Issues of each requested kind (0 included), over all pages."
    )
    by_village: dict[str, int] = Field(
        description="Issues per village code (villages with at least one), over all pages."
    )


class QualityIssuePage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_ISSUE_EXAMPLE],
                    "next_cursor": "WyJpZF9udW1iZXJfaW52YWxpZCIsIjM3MTUyMjEwMTIwMSIsIjBjM2IifQ",
                    "counts": {
                        "by_kind": {
                            "id_number_missing": 12,
                            "id_number_invalid": 3,
                            "id_number_duplicate": 2,
                            "head_not_member": 1,
                            "size_mismatch": 7,
                            "cause_contradicts_members": 5,
                            "cause_repeated": 0,
                            "income_implausible": 1,
                            "visit_without_photo": 40,
                            "deceased_member_listed": 1,
                            "visit_far_from_village": 2,
                        },
                        "by_village": {"371522101201": 51, "371522101202": 22},
                    },
                }
            ]
        }
    )

    items: list[QualityIssue]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
    counts: IssueCounts
