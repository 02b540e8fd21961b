"""/monitoring/alerts: department alerts (部门筛查预警): import, list, verify."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from app.auth.deps import MonitoringWriter, RecordsReader, require
from app.auth.principal import Principal
from app.core.config import get_settings
from app.core.db import SessionDep
from app.core.errors import Forbidden, InvalidInput, NotFound, problem_responses
from app.core.i18n import Text, text_of
from app.core.pagination import Page, PageDep
from app.monitoring import alerts
from app.monitoring.alert_import import read_alert_file
from app.monitoring.alerts_schemas import AlertImportReport, AlertPublic, AlertVerify
from app.monitoring.vocabulary import AlertKind, AlertStatus, Department
from app.regions import codes
from app.regions.codes import CODE_PATTERN
from app.regions.models import Region
from app.users.models import Role

router = APIRouter(prefix="/monitoring/alerts", tags=["monitoring"])

# County information center: import the departments' lists.
AlertImporter = Annotated[
    Principal, Depends(require(roles=(Role.county_admin,), scopes=("monitoring:write",)))
]


@router.post(
    "/import",
    response_model=AlertImportReport,
    responses=problem_responses(
        400,
        401,
        403,
        404,
        413,
        422,
        described={
            400: "`bad_request`: the multipart body itself is malformed.",
            422: "`alert_file_unreadable`: the file cannot be read as a whole (its `reason`: "
            "`too_large`, `not_csv_or_xlsx`, `encoding`, `no_header`, `missing_columns`, "
            "`bad_xlsx`); nothing was imported. Or an invalid `county`.",
        },
    ),
)
async def import_alerts(
    session: SessionDep,
    principal: AlertImporter,
    file: Annotated[UploadFile, File(description="The department's list: CSV or XLSX.")],
    county: Annotated[
        str | None,
        Form(
            max_length=21,
            pattern=CODE_PATTERN,
            description="County code; default: your county (required if you have several).",
            examples=["371522000000"],
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        Form(description="Check and count only: the same report, nothing stored (a preview)."),
    ] = False,
) -> AlertImportReport:
    """Import a department's list of people (民政, 医保, 教育 …) as alerts (部门筛查预警).

    The file (CSV: UTF-8 with or without BOM, or GB18030 as Excel and WPS save it; or XLSX, the
    first sheet) has a header row with the columns `department`, `id_number`, `kind`,
    `occurred_on` and, optionally, `amount` (yuan, digits with at most two decimals) and
    `note`; other columns are ignored. Departments and kinds are the codes of
    `/api/v1/vocabulary` (their Chinese labels are accepted too); `occurred_on` is a date
    (2026-03-02) not in the future.

    Each row whose ID number a current member of a household under the county holds (through
    the keyed hash, never a plain-text comparison) becomes an open alert of that member:
    `matched` counts them. `unmatched` counts valid rows without such a member,
    `duplicate` rows already stored (same county, department, ID number, kind and date) or
    repeated in the file: importing a file again stores nothing new. Bad rows are `rejected`
    and listed by row number (the header is row 1) with the column and the reason; the other
    rows are imported all the same. A file that cannot be read as a whole imports nothing (422
    `alert_file_unreadable`).

    Always **200** with the report, whether or not anything new was stored: the answer is the
    import's account, not a created resource (an unchanged re-import is the same answer).
    With `dry_run`, the import runs to its report and is then undone: a preview of exactly
    what importing would do.
    """
    county_code = _import_county(principal, county)
    if await session.get(Region, county_code) is None:
        raise NotFound(Text("region {county_code} does not exist", county_code=county_code))
    max_bytes = get_settings().alert_import_max_bytes
    data = await file.read(max_bytes + 1)
    today = alerts.local_today()

    def read() -> alerts.AlertImport:
        parsed = read_alert_file(data, filename=file.filename, today=today, max_bytes=max_bytes)
        return alerts.begin_import(parsed, county_code=county_code, actor_id=principal.id)

    # Parsing and hashing 100,000 rows takes seconds of CPU: not on the event loop.
    job = await run_in_threadpool(read)
    if dry_run:
        # The very import, undone: the preview cannot disagree with what importing does.
        savepoint = await session.begin_nested()
        await alerts.import_rows(session, job)
        await savepoint.rollback()
    else:
        await alerts.import_rows(session, job)
    return job.counts.report(county_code).model_copy(update={"dry_run": dry_run})


def _import_county(principal: Principal, county: str | None) -> str:
    own = [c for c in principal.region_codes if codes.level_of(c) is codes.Level.county]
    if county is None:
        if len(own) != 1:
            raise InvalidInput.field(
                "body.county", Text("name the county: you administer several"), type="missing"
            )
        return own[0]
    try:
        level = codes.level_of(county)
    except codes.InvalidCode as exc:
        raise InvalidInput.field("body.county", text_of(exc)) from None
    if level is not codes.Level.county:
        raise InvalidInput.field(
            "body.county", Text("{county} is not a county code", county=county)
        )
    if not principal.covers(county):
        raise Forbidden(Text("you are not an admin of county {county}", county=county))
    return county


@router.get(
    "",
    response_model=Page[AlertPublic],
    responses=problem_responses(
        401, 404, 422, described={404: "`region` lies outside the caller's regions"}
    ),
)
async def list_alerts(
    session: SessionDep,
    principal: RecordsReader,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(
            max_length=21,
            pattern=CODE_PATTERN,
            description="County, town or village code within your regions; default: all of "
            "your regions.",
            examples=["371522101000"],
        ),
    ] = None,
    status: Annotated[AlertStatus | None, Query(description="open or verified")] = None,
    kind: AlertKind | None = None,
    department: Department | None = None,
) -> Page[AlertPublic]:
    """Department alerts of your villages, newest import first.

    Officers and first secretaries see their villages' alerts, town staff their town's, the
    county admin the county's: an alert belongs to the village its household was in when it was
    imported (`village_code`), as in the change feed. Without `pii:read` for the village the
    member's ID number, and ID and mobile numbers in the notes, are masked.
    """
    items, cursor = await alerts.list_alerts(
        session,
        principal=principal,
        region=region,
        status=status,
        kind=kind,
        department=department,
        page=page,
    )
    return Page(items=items, next_cursor=cursor)


@router.get("/{alert_id}", response_model=AlertPublic, responses=problem_responses(401, 404))
async def get_alert(
    session: SessionDep, principal: RecordsReader, alert_id: uuid.UUID
) -> AlertPublic:
    """Get one department alert."""
    return await alerts.get_alert_public(session, principal=principal, alert_id=alert_id)


@router.post(
    "/{alert_id}/verify",
    response_model=AlertPublic,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        described={409: "`alert_already_verified`: the alert was verified before"},
    ),
)
async def verify_alert(
    session: SessionDep, principal: MonitoringWriter, alert_id: uuid.UUID, data: AlertVerify
) -> AlertPublic:
    """Record what verifying an alert found (核实): a case opened, no risk, or data corrected.

    By the village's officers and first secretary, the town's staff or the county admin.
    `case_opened` names the monitoring case (`case_id`) of the alert's household. An alert is
    verified once (409 after).
    """
    return await alerts.verify_alert(session, principal=principal, alert_id=alert_id, data=data)
