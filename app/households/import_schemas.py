"""The household import's report, as the API shows it."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import PROBLEM_BASE

Outcome = Literal["create", "exists", "error"]

_EXAMPLE: dict[str, Any] = {
    "dry_run": True,
    "applied": False,
    "totals": {
        "rows": 3,
        "households": 2,
        "members": 2,
        "create": 1,
        "exists": 0,
        "error_households": 1,
        "error_rows": 1,
    },
    "columns": {"户编号": "number", "行政区划代码": "village_code", "姓名": "name"},
    "ignored_columns": ["民族", "文化程度"],
    "rows": [
        {
            "row": 2,
            "number": "3715221012010007",
            "name": "张建国",
            "id_number": "371522********1234",
            "outcome": "create",
            "household_id": None,
            "errors": [],
        },
        {
            "row": 3,
            "number": "3715221012010007",
            "name": "李秀英",
            "id_number": None,
            "outcome": "create",
            "household_id": None,
            "errors": [],
        },
        {
            "row": 4,
            "number": "3715221012010008",
            "name": "王福生",
            "id_number": "110105********002Y",
            "outcome": "error",
            "household_id": None,
            "errors": [
                {
                    "column": "证件号码",
                    "code": "invalid_id_number",
                    "message": "证件号码校验位错误（GB 11643）",
                }
            ],
        },
    ],
}


class ImportRowError(BaseModel):
    column: str = Field(description="The column's header as the file writes it.")
    code: str = Field(
        description="English code: required, unknown_code, invalid_id_number, lost_digits, "
        "invalid_year, invalid_number, invalid_value, inconsistent, unknown_village, "
        "ambiguous_village, outside_region, no_head, several_heads, head_name_mismatch, "
        "duplicate_id_number, id_number_registered, household_number_taken."
    )
    message: str = Field(description="What is wrong, in 简体中文, for the people fixing the file.")


class ImportRowReport(BaseModel):
    row: int = Field(description="The row's number in the sheet (Excel's), the header above it.")
    number: str | None = Field(description="户编号 of the row (null when missing or invalid).")
    name: str | None = Field(description="姓名 of the member.")
    id_number: str | None = Field(
        description="The member's ID number as read: masked (371522********123X) unless you may "
        "see the village's personal data; an invalid one is shown masked too."
    )
    outcome: Outcome = Field(
        description="`create`: the household is (or would be) created with this member; "
        "`exists`: a household of yours has this 户编号 already and the row is skipped; "
        "`error`: the row, or another row of its household, has errors (a household is "
        "written whole or not at all)."
    )
    household_id: uuid.UUID | None = Field(
        description="The household created (after the import) or already there (`exists`)."
    )
    errors: list[ImportRowError]


class ImportTotals(BaseModel):
    rows: int = Field(description="Data rows read (blank rows skipped).")
    households: int = Field(description="Distinct 户编号 in the file.")
    members: int = Field(description="Members of the households created (or to be created).")
    create: int = Field(description="Households created (or to be created, in a dry run).")
    exists: int = Field(description="Households already registered: skipped, not changed.")
    error_households: int
    error_rows: int = Field(description="Rows with errors of their own.")


class HouseholdImportReport(BaseModel):
    """What the import found in each row, and what it did (nothing in a dry run)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    dry_run: bool
    applied: bool = Field(description="True when the households were written.")
    totals: ImportTotals
    columns: dict[str, str] = Field(description="Each recognised header → the field it fills.")
    ignored_columns: list[str] = Field(description="Headers with no place in the record.")
    rows: list[ImportRowReport]


# The 422 of an import (dry_run=false) with errors: the problem, with the report in `report`.
INVALID_EXAMPLE: dict[str, Any] = {
    "type": PROBLEM_BASE + "household-import-invalid",
    "title": "Household import has errors",
    "status": 422,
    "detail": "1 row(s) have errors: nothing was imported",
    "code": "household_import_invalid",
    "retryable": False,
    "report": {**_EXAMPLE, "dry_run": False},
}
