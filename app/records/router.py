"""/visits, /income-snapshots, /measures (idempotent PUT); a household's records and timeline.

The per-household lists live here, with the records they list, rather than in households/.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from app.auth.deps import RecordsReader, StreamingWriter
from app.auth.principal import Principal
from app.core.db import SessionDep, Transactions, TransactionsDep
from app.core.errors import problem_responses
from app.core.i18n import Text
from app.core.pagination import Page, PageDep
from app.records import service
from app.records.errors import RecordConflict, RecordStale
from app.records.schemas import (
    IncomeSnapshotPublic,
    IncomeSnapshotWrite,
    MeasurePublic,
    MeasureWrite,
    RecordWrite,
    VisitPublic,
    VisitWrite,
)
from app.records.timeline import TimelineEvent, household_timeline
from app.records.vocabulary import Outcome, RecordType

router = APIRouter(tags=["records"])

_OUTCOME_HEADER = {
    "Record-Outcome": {
        "description": "created, updated or unchanged (a retry of the stored revision)",
        "schema": {"type": "string", "enum": ["created", "updated", "unchanged"]},
    }
}


def put_responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(401, 403, 404, 409, 422)
    responses[409] = {
        **responses[409],
        "description": "`conflict` (same revision, other content) or `stale` (lower revision); "
        "the stored record is in the problem document's `record` member",
    }
    return {
        **responses,
        200: {"description": "Updated, or unchanged (a retry)", "headers": _OUTCOME_HEADER},
        201: {"model": model, "description": "Created", "headers": _OUTCOME_HEADER},
    }


PUT_DESCRIPTION = """

Send the whole record with its `revision` (1 when created on the phone, +1 for each local edit):

* a new id → **201**, created;
* a higher revision → **200**, updated (only by its author, the village's first secretary or
  the county admin);
* the same revision with identical content → **200**, unchanged (a retry);
* the same revision with different content → **409** `conflict`, the stored record in `record`;
* a lower revision → **409** `stale`, the stored record in `record`.

`Record-Outcome` says which. Batch sync applies the same rule.

Without `pii:read` for the household's village, a caller is shown the position coarsened, the
address left out and ID and mobile numbers in the text masked. A revision that sends those back
as shown keeps what is stored; only values that differ from what was shown are changes.
"""


# A PUT is authenticated in a short transaction of its own, before its write transaction.
PutWriter = StreamingWriter


async def put_record(
    transactions: Transactions,
    principal: Principal,
    *,
    kind_type: RecordType,
    record_id: uuid.UUID,
    data: RecordWrite,
    response: Response,
) -> BaseModel:
    """The idempotent PUT of every record type (monitoring cases' too): apply, then answer.

    What needs no database (the values, the content hash) is checked before the transaction
    opens; the caller was authenticated in a short one of its own (`PutWriter`): the write
    transaction (on SQLite, the write lock) lasts for the writing alone.
    """
    kind = service.KINDS[kind_type]
    prepared = service.prepare(kind, data)
    async with transactions(writing=True) as session:
        applied = await service.apply_record(
            session,
            principal=principal,
            kind=kind,
            record_id=record_id,
            data=data,
            prepared=prepared,
        )
        village = applied.household.village_code
        public = await service.public_of(
            session,
            kind,
            applied.record,
            village_code=village,
            reveal_pii=principal.may_see_pii(village),
        )
    if applied.outcome is Outcome.conflict:
        raise RecordConflict(
            Text(
                "revision {revision} of this {kind_type} is stored with other content",
                revision=data.revision,
                kind_type=kind_type.value,
            ),
            record=public.model_dump(mode="json"),
        )
    if applied.outcome is Outcome.stale:
        raise RecordStale(
            Text(
                "the server holds revision {applied_record_revision}, later than {revision}",
                applied_record_revision=applied.record.revision,
                revision=data.revision,
            ),
            record=public.model_dump(mode="json"),
        )
    response.status_code = 201 if applied.outcome is Outcome.created else 200
    response.headers["Record-Outcome"] = applied.outcome.value
    return public


async def _get(
    session: SessionDep, principal: Principal, kind_type: RecordType, record_id: uuid.UUID
) -> BaseModel:
    kind = service.KINDS[kind_type]
    record, household = await service.get_record(
        session, principal=principal, kind=kind, record_id=record_id
    )
    village = household.village_code
    return await service.public_of(
        session, kind, record, village_code=village, reveal_pii=principal.may_see_pii(village)
    )


async def _list(
    session: SessionDep,
    principal: Principal,
    kind_type: RecordType,
    household_id: uuid.UUID,
    page: Any,
) -> dict[str, Any]:
    kind = service.KINDS[kind_type]
    rows, cursor, household = await service.list_records(
        session, principal=principal, kind=kind, household_id=household_id, page=page
    )
    village = household.village_code
    items = await kind.publics(session, rows, village, principal.may_see_pii(village))
    return {"items": items, "next_cursor": cursor}


@router.put(
    "/visits/{visit_id}",
    response_model=VisitPublic,
    responses=put_responses(VisitPublic),
    description="Record a visit (走访记录), or a new revision of it." + PUT_DESCRIPTION,
)
async def put_visit(
    transactions: TransactionsDep,
    principal: PutWriter,
    visit_id: uuid.UUID,
    data: VisitWrite,
    response: Response,
) -> Any:
    """Record a visit (走访记录), or a new revision of it."""
    return await put_record(
        transactions,
        principal,
        kind_type=RecordType.visit,
        record_id=visit_id,
        data=data,
        response=response,
    )


@router.put(
    "/income-snapshots/{snapshot_id}",
    response_model=IncomeSnapshotPublic,
    responses=put_responses(IncomeSnapshotPublic),
    description="Record an income snapshot (收入核算); the server computes the totals."
    + PUT_DESCRIPTION,
)
async def put_income_snapshot(
    transactions: TransactionsDep,
    principal: PutWriter,
    snapshot_id: uuid.UUID,
    data: IncomeSnapshotWrite,
    response: Response,
) -> Any:
    """Record an income snapshot (收入核算); the server computes the totals."""
    return await put_record(
        transactions,
        principal,
        kind_type=RecordType.income_snapshot,
        record_id=snapshot_id,
        data=data,
        response=response,
    )


@router.put(
    "/measures/{measure_id}",
    response_model=MeasurePublic,
    responses=put_responses(MeasurePublic),
    description="Record a support measure (帮扶措施) with its progress reports." + PUT_DESCRIPTION,
)
async def put_measure(
    transactions: TransactionsDep,
    principal: PutWriter,
    measure_id: uuid.UUID,
    data: MeasureWrite,
    response: Response,
) -> Any:
    """Record a support measure (帮扶措施) with its progress reports."""
    return await put_record(
        transactions,
        principal,
        kind_type=RecordType.measure,
        record_id=measure_id,
        data=data,
        response=response,
    )


@router.get("/visits/{visit_id}", response_model=VisitPublic, responses=problem_responses(401, 404))
async def get_visit(session: SessionDep, principal: RecordsReader, visit_id: uuid.UUID) -> Any:
    """Get one visit."""
    return await _get(session, principal, RecordType.visit, visit_id)


@router.get(
    "/income-snapshots/{snapshot_id}",
    response_model=IncomeSnapshotPublic,
    responses=problem_responses(401, 404),
)
async def get_income_snapshot(
    session: SessionDep, principal: RecordsReader, snapshot_id: uuid.UUID
) -> Any:
    """Get one income snapshot, with the poverty line and monitoring threshold of its year."""
    return await _get(session, principal, RecordType.income_snapshot, snapshot_id)


@router.get(
    "/measures/{measure_id}", response_model=MeasurePublic, responses=problem_responses(401, 404)
)
async def get_measure(session: SessionDep, principal: RecordsReader, measure_id: uuid.UUID) -> Any:
    """Get one support measure with its progress reports."""
    return await _get(session, principal, RecordType.measure, measure_id)


@router.get(
    "/households/{household_id}/visits",
    response_model=Page[VisitPublic],
    responses=problem_responses(401, 404, 422),
)
async def list_household_visits(
    session: SessionDep, principal: RecordsReader, household_id: uuid.UUID, page: PageDep
) -> Any:
    """A household's visits, newest first (by the server's receipt)."""
    return await _list(session, principal, RecordType.visit, household_id, page)


@router.get(
    "/households/{household_id}/income-snapshots",
    response_model=Page[IncomeSnapshotPublic],
    responses=problem_responses(401, 404, 422),
)
async def list_household_income_snapshots(
    session: SessionDep, principal: RecordsReader, household_id: uuid.UUID, page: PageDep
) -> Any:
    """A household's income snapshots, newest first (by the server's receipt)."""
    return await _list(session, principal, RecordType.income_snapshot, household_id, page)


@router.get(
    "/households/{household_id}/measures",
    response_model=Page[MeasurePublic],
    responses=problem_responses(401, 404, 422),
)
async def list_household_measures(
    session: SessionDep, principal: RecordsReader, household_id: uuid.UUID, page: PageDep
) -> Any:
    """A household's support measures, newest first (by the server's receipt)."""
    return await _list(session, principal, RecordType.measure, household_id, page)


@router.get(
    "/households/{household_id}/timeline",
    response_model=Page[TimelineEvent],
    responses=problem_responses(401, 404, 422),
)
async def get_household_timeline(
    session: SessionDep, principal: RecordsReader, household_id: uuid.UUID, page: PageDep
) -> Page[TimelineEvent]:
    """A household's visits, income snapshots, measure changes and status changes, oldest first."""
    events, cursor = await household_timeline(
        session, principal=principal, household_id=household_id, page=page
    )
    return Page(items=events, next_cursor=cursor)
