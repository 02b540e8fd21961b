"""/monitoring-cases: open a case (idempotent PUT, like a visit), list cases, take steps."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.auth.deps import MonitoringWriter, RecordsReader
from app.core.db import SessionDep, TransactionsDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.monitoring import service, steps
from app.monitoring.schemas import MonitoringCasePublic, MonitoringCaseWrite, StepCreate
from app.monitoring.vocabulary import CaseCategory, CaseStatus
from app.records import service as records_service
from app.records.router import PUT_DESCRIPTION, PutWriter, put_record, put_responses
from app.records.vocabulary import RecordType
from app.regions.codes import CODE_PATTERN

router = APIRouter(tags=["monitoring"])

_CASE_RULES = """

A household has at most one open case (neither `cleared` nor `rejected`): opening a second one
answers **409** `case_open`, naming the open case in `open_case_id`. `category`:
`unstable_lifted` only for registered households that were lifted, `marginal` only for ordinary
households, `sudden_hardship` for any. Until the case is identified a revision may change
everything; from then on `category`, `found_via`, `alert_id` and `found_on` are fixed, and a
cleared or rejected case takes no revision (409 `case_closed`). The procedure (`status`, dates,
`steps`) is never written by this PUT: see POST /monitoring-cases/{case_id}/steps.
"""


@router.put(
    "/monitoring-cases/{case_id}",
    response_model=MonitoringCasePublic,
    responses=put_responses(MonitoringCasePublic),
    description="Open a monitoring case (监测对象申报), or a new revision of it."
    + _CASE_RULES
    + PUT_DESCRIPTION,
)
async def put_monitoring_case(
    transactions: TransactionsDep,
    principal: PutWriter,
    case_id: uuid.UUID,
    data: MonitoringCaseWrite,
    response: Response,
) -> Any:
    """Open a monitoring case (监测对象申报), or a new revision of it."""
    return await put_record(
        transactions,
        principal,
        kind_type=RecordType.monitoring_case,
        record_id=case_id,
        data=data,
        response=response,
    )


@router.get(
    "/monitoring-cases",
    response_model=Page[MonitoringCasePublic],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_monitoring_cases(
    session: SessionDep,
    principal: RecordsReader,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(
            max_length=21,
            pattern=CODE_PATTERN,
            description="A division code of yours or under it (default: all of yours); "
            "404 for one outside them.",
            examples=["371522101000"],
        ),
    ] = None,
    status: CaseStatus | None = None,
    category: CaseCategory | None = None,
    awaiting_my_step: Annotated[
        bool,
        Query(description="Only the cases waiting for a step the caller's role takes."),
    ] = False,
) -> Any:
    """List the monitoring cases of households in the caller's regions, newest first."""
    rows, cursor = await service.list_cases(
        session,
        principal=principal,
        filters=service.CaseFilters(
            region=region,
            status=status,
            category=category,
            statuses=steps.statuses_awaiting(principal.role) if awaiting_my_step else None,
        ),
        page=page,
    )
    items = await service.publics_by_village(session, principal, rows)
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/monitoring-cases/{case_id}",
    response_model=MonitoringCasePublic,
    responses=problem_responses(401, 403, 404),
)
async def get_monitoring_case(
    session: SessionDep, principal: RecordsReader, case_id: uuid.UUID
) -> Any:
    """Get one monitoring case with its status and every step taken."""
    case, household = await service.get_case(session, principal=principal, case_id=case_id)
    return await service.case_view(session, principal, case, village_code=household.village_code)


@router.get(
    "/households/{household_id}/monitoring-cases",
    response_model=Page[MonitoringCasePublic],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_household_monitoring_cases(
    session: SessionDep, principal: RecordsReader, household_id: uuid.UUID, page: PageDep
) -> Any:
    """A household's monitoring cases, newest first (by the server's receipt)."""
    kind = records_service.KINDS[RecordType.monitoring_case]
    rows, cursor, household = await records_service.list_records(
        session, principal=principal, kind=kind, household_id=household_id, page=page
    )
    village = household.village_code
    items = await kind.publics(session, rows, village, principal.may_see_pii(village))
    return {"items": items, "next_cursor": cursor}


@router.post(
    "/monitoring-cases/{case_id}/steps",
    status_code=201,
    response_model=MonitoringCasePublic,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        described={
            403: "A step of another role (village: officer or first secretary; town: town "
            "staff; county: county admin)",
            409: "`step_out_of_order`: the case waits for another step (`case_status`, "
            "`expected_step`)",
            422: "Invalid input; or `clearing_blocked`: the clearing rule refuses the "
            "clearance, its `reasons` listed ({code, detail})",
        },
    ),
)
async def create_monitoring_case_step(
    session: SessionDep, principal: MonitoringWriter, case_id: uuid.UUID, data: StepCreate
) -> Any:
    """Take the next step of a case's procedure (review, approval, or their clearance)."""
    case, household = await steps.take_step(
        session, principal=principal, case_id=case_id, data=data
    )
    return await service.case_view(session, principal, case, village_code=household.village_code)
