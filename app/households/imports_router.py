"""/households/imports: households from the national register's .xlsx (建档立卡 layout)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from app.auth.deps import HouseholdAdmin
from app.core.config import get_settings
from app.core.db import SessionDep
from app.core.errors import PROBLEM_MEDIA_TYPE, InvalidInput, problem_responses
from app.core.i18n import Text
from app.households import imports
from app.households.import_file import HouseholdFile, read_household_file
from app.households.import_schemas import INVALID_EXAMPLE, HouseholdImportReport

router = APIRouter(prefix="/households", tags=["households"])

_IMPORT_ERRORS = problem_responses(
    400,
    401,
    403,
    413,
    422,
    described={
        400: "`bad_request`: the multipart body itself is malformed.",
        413: "`household_file_too_large`: over FIELDSYNC_HOUSEHOLD_IMPORT_MAX_BYTES "
        "(`reason` `bytes` or `inflated`, `limit_bytes`) or "
        "FIELDSYNC_HOUSEHOLD_IMPORT_MAX_ROWS data rows (`reason` `rows`, `limit_rows`); "
        "or the request body over its limit (`payload_too_large`). Nothing was written.",
        422: "`household_file_unreadable`: the file cannot be read as a whole "
        "(`reason`: `not_xlsx`, `bad_xlsx`, `no_header`, `missing_columns`; `message` "
        "in 简体中文); `household_import_invalid`: dry_run=false and some rows have "
        "errors: nothing was written, `report` is the report (as in a dry run); or "
        "`validation_failed` (no file, a bad `dry_run`).",
    },
)
_IMPORT_ERRORS[422]["content"][PROBLEM_MEDIA_TYPE]["example"] = INVALID_EXAMPLE


@router.post(
    "/imports",
    response_model=HouseholdImportReport,
    responses={
        200: {"description": "Dry run: the report of every row; nothing was written."},
        201: {
            "model": HouseholdImportReport,
            "description": "Imported: every new household and its members were written.",
        },
        **_IMPORT_ERRORS,
    },
)
async def import_households(
    session: SessionDep,
    principal: HouseholdAdmin,
    response: Response,
    file: Annotated[
        UploadFile, File(description="The national register's household list: an .xlsx file.")
    ],
    dry_run: Annotated[
        bool | None,
        Query(description="true (the default): check and report only; false: write."),
    ] = None,
    dry_run_form: Annotated[
        bool | None,
        Form(alias="dry_run", description="The same as the query parameter, as a form field."),
    ] = None,
) -> HouseholdImportReport:
    """Import households from the national register's .xlsx (dry run first; then all or none).

    One row per member, the household's cells repeated on each member's row or left blank
    after its first (headers as the national system writes them, e.g. 户编号, 行政区划代码 or
    行政村, 户主姓名, 姓名, 证件号码, 与户主关系, 贫困户属性, 脱贫状态, 主要致贫原因,
    首次识别时间; the full list is in the README). Coded cells take the national code or the
    Chinese label. Each household is checked by the rules of `POST /api/v1/households` plus
    exactly one head (与户主关系 01/户主); the report gives each row's outcome (`create`,
    `exists` for an 户编号 already registered in your county, which is left unchanged, or
    `error` with `{column, code, message}` in 简体中文). ID numbers are masked without
    `pii:read`.

    With `dry_run=true` (the default) nothing is written: **200**. With `dry_run=false` the
    new households are written in one transaction, with their change log and sync entries:
    **201**; if any row has an error nothing is written: **422** `household_import_invalid`
    with the same report in `report`. County admin only.
    """
    if dry_run is not None and dry_run_form is not None and dry_run != dry_run_form:
        raise InvalidInput.field(
            "query.dry_run",
            Text("dry_run is given twice, as query and form, with different values"),
        )
    dry = next((v for v in (dry_run, dry_run_form) if v is not None), True)
    settings = get_settings()
    max_bytes = settings.household_import_max_bytes
    data = await file.read(max_bytes + 1)

    def read() -> HouseholdFile:
        return read_household_file(
            data,
            filename=file.filename,
            max_bytes=max_bytes,
            max_rows=settings.household_import_max_rows,
        )

    # openpyxl parses for seconds on a county's file: not on the event loop.
    parsed = await run_in_threadpool(read)
    report = await imports.import_households(session, principal=principal, file=parsed, dry_run=dry)
    if report.applied:
        response.status_code = 201
    return report
