"""Writing field records idempotently (the rule batch sync shares) and reading them."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.errors import FieldError, Forbidden, InvalidInput
from app.core.events import publish
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.households import service as households_service
from app.households.errors import HouseholdNotFound
from app.households.models import Household
from app.monitoring import service as monitoring_service
from app.monitoring.models import MonitoringCase
from app.monitoring.schemas import MonitoringCaseWrite
from app.records import convert
from app.records.errors import RecordNotFound
from app.records.events import RecordWriting, RecordWritten
from app.records.models import IncomeSnapshot, Measure, MeasureRevision, RecordColumns, Visit
from app.records.schemas import IncomeSnapshotWrite, MeasureWrite, RecordWrite, VisitWrite
from app.records.vocabulary import Outcome, RecordType
from app.users.models import Role

# How far ahead of the server's clock a phone's clock may be.
CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class Kind:
    """What differs between the record types; everything else is shared."""

    record_type: RecordType
    model: type[RecordColumns]
    write: type[RecordWrite]
    columns: Callable[[Any], dict[str, Any]]
    # (session, rows of one village, its code, reveal_pii) → public views, in order.
    publics: Callable[[AsyncSession, Sequence[Any], str, bool], Awaitable[list[BaseModel]]]
    # Rules of a write that need the database: (session, household, body, the stored record or
    # None for a new one). Run before anything is written; raise to refuse.
    check: Callable[[AsyncSession, Household, Any, Any], Awaitable[None]] | None = None
    # State kept by the server that a new record starts in, beyond its content.
    initial: Callable[[Household], dict[str, Any]] | None = None
    # A new record refused by a constraint other than its id (the race `check` cannot see):
    # raise the error that explains it.
    refused: Callable[[AsyncSession, Household], Awaitable[None]] | None = None


def _not_in_future(moment: datetime, *, field: str, now: datetime) -> None:
    if moment > now + CLOCK_SKEW:
        raise InvalidInput.field(
            field,
            Text(
                "{value} is in the future: check the phone's clock", value=field.rsplit(".", 1)[-1]
            ),
            type="in_future",
        )


def _visit_columns(data: VisitWrite) -> dict[str, Any]:
    now = utcnow()
    _not_in_future(data.visited_at, field="body.visited_at", now=now)
    return convert.visit_columns(data, now=now)


def _snapshot_columns(data: IncomeSnapshotWrite) -> dict[str, Any]:
    now = utcnow()
    _not_in_future(data.recorded_at, field="body.recorded_at", now=now)
    return convert.snapshot_columns(data)


def _measure_columns(data: MeasureWrite) -> dict[str, Any]:
    now = utcnow()
    for i, report in enumerate(data.progress_reports):
        _not_in_future(report.reported_at, field=f"body.progress_reports.{i}.reported_at", now=now)
    return convert.measure_columns(data)


async def _visit_publics(
    session: AsyncSession, rows: Sequence[Any], village_code: str, reveal_pii: bool
) -> list[BaseModel]:
    return [convert.visit_public(row, reveal_pii=reveal_pii) for row in rows]


async def _snapshot_publics(
    session: AsyncSession, rows: Sequence[Any], village_code: str, reveal_pii: bool
) -> list[BaseModel]:
    return list(await convert.snapshot_publics(session, rows, village_code=village_code))


async def _measure_publics(
    session: AsyncSession, rows: Sequence[Any], village_code: str, reveal_pii: bool
) -> list[BaseModel]:
    return [convert.measure_public(row, reveal_pii=reveal_pii) for row in rows]


KINDS: dict[RecordType, Kind] = {
    RecordType.visit: Kind(RecordType.visit, Visit, VisitWrite, _visit_columns, _visit_publics),
    RecordType.income_snapshot: Kind(
        RecordType.income_snapshot,
        IncomeSnapshot,
        IncomeSnapshotWrite,
        _snapshot_columns,
        _snapshot_publics,
    ),
    RecordType.measure: Kind(
        RecordType.measure,
        Measure,
        MeasureWrite,
        _measure_columns,
        _measure_publics,
    ),
    RecordType.monitoring_case: Kind(
        RecordType.monitoring_case,
        MonitoringCase,
        MonitoringCaseWrite,
        monitoring_service.case_columns,
        monitoring_service.case_publics,
        check=monitoring_service.check_write,
        initial=monitoring_service.initial_columns,
        refused=monitoring_service.refuse_second_open_case,
    ),
}


async def public_of(
    session: AsyncSession, kind: Kind, record: Any, *, village_code: str, reveal_pii: bool
) -> BaseModel:
    return (await kind.publics(session, [record], village_code, reveal_pii))[0]


def content_hash(data: RecordWrite) -> str:
    """Hash of the normalised content (revision aside): 0.1 and "0.10" yuan are the same."""
    # Defaults left out: an omitted field and its explicit default are the same content, and a
    # field added later with a default does not change the hash of records already stored.
    body = data.model_dump(mode="json", exclude={"revision"}, exclude_defaults=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def decide(*, stored_revision: int, stored_hash: str, revision: int, new_hash: str) -> Outcome:
    """The one rule: what a write of `revision` does to a record stored at `stored_revision`."""
    if revision > stored_revision:
        return Outcome.updated
    if revision < stored_revision:
        return Outcome.stale
    return Outcome.unchanged if new_hash == stored_hash else Outcome.conflict


@dataclass(frozen=True)
class Prepared:
    """What a write derives from its body alone (no database): checked before any lock."""

    columns: dict[str, Any]
    content_hash: str


def prepare(kind: Kind, data: RecordWrite) -> Prepared:
    """The stored columns and content hash of `data`; raises for values never storable."""
    return Prepared(kind.columns(data), content_hash(data))


def new_record(
    model: type[RecordColumns],
    *,
    record_id: uuid.UUID,
    data: RecordWrite,
    columns: dict[str, Any],
    author_id: uuid.UUID,
    device_id: str | None,
    now: datetime,
    digest: str | None = None,
) -> RecordColumns:
    """A record as first received: revision and content hash of `data`, authored now."""
    return model(
        id=record_id,
        household_id=data.household_id,
        revision=data.revision,
        content_hash=digest or content_hash(data),
        author_id=author_id,
        device_id=device_id,
        received_at=now,
        updated_at=now,
        updated_by=author_id,
        **columns,
    )


@dataclass(frozen=True)
class Applied:
    outcome: Outcome
    record: RecordColumns
    household: Household


def _may_edit(principal: Principal, record: RecordColumns, village_code: str) -> bool:
    """Its author, the village's first secretary, or the county admin."""
    if record.author_id == principal.id:
        return True
    return principal.role in (Role.first_secretary, Role.county_admin) and principal.covers(
        village_code
    )


async def _household_for(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID
) -> Household:
    try:
        return await households_service.get_household(
            session, principal=principal, household_id=household_id
        )
    except HouseholdNotFound as exc:
        # Unknown and not-yours answer alike: existence is not leaked.
        raise HouseholdNotFound(
            exc.text,
            errors=[
                FieldError.of(
                    "body.household_id",
                    Text("no such household in your villages"),
                    type="not_found",
                )
            ],
        ) from None


async def apply_record(
    session: AsyncSession,
    *,
    principal: Principal,
    kind: Kind,
    record_id: uuid.UUID,
    data: RecordWrite,
    households: dict[uuid.UUID, Household] | None = None,
    known: dict[uuid.UUID, Any] | None = None,
    prepared: Prepared | None = None,
) -> Applied:
    """Create, update or recognise a retry of one record; conflicts and stale writes change nothing.

    Returns the outcome and the record as stored afterwards. Raises for input the record can
    never be stored with (unknown household, invalid values, no right to edit), before writing
    anything. For a batch: `households` caches the caller's households already looked up,
    `known` holds the records of this kind the batch names, loaded and locked up front (an id
    missing from it does not exist yet; records created here are added to it), and `prepared`
    what was derived from the body before the transaction. A batch's writes are not flushed
    here: the batch flushes them all at once, and a record that another request created in
    the meantime fails that flush (the batch is then tried again, and judges against it).
    """
    batch = known is not None
    household = (households or {}).get(data.household_id)
    if household is None or inspect(household).expired_attributes:
        household = await _household_for(
            session, principal=principal, household_id=data.household_id
        )
        if households is not None:
            households[household.id] = household
    prepared = prepared or prepare(kind, data)
    columns, new_hash = prepared.columns, prepared.content_hash
    now = utcnow()

    if known is not None:
        stored = known.get(record_id)
    else:
        stored = await session.get(kind.model, record_id, with_for_update=True)
    if stored is None:
        if kind.check is not None:
            if batch:
                await session.flush()  # the check reads what the batch wrote before
            await kind.check(session, household, data, None)
        record = new_record(
            kind.model,
            record_id=record_id,
            data=data,
            columns={**columns, **(kind.initial(household) if kind.initial else {})},
            author_id=principal.id,
            device_id=principal.device_id,
            now=now,
            digest=new_hash,
        )
        writing = RecordWriting(model=kind.model, record=None, household=household, data=data)
        await publish(session, writing)
        if known is not None:
            session.add(record)
            known[record_id] = record
            await _written(
                session, kind, writing, record, principal=principal, created=True, batch=True
            )
            return Applied(Outcome.created, record, household)
        try:
            async with session.begin_nested():
                session.add(record)
                await session.flush()
        except IntegrityError:
            # The same id arrived a moment ago through another request: judge against it.
            stored = await session.get(
                kind.model, record_id, with_for_update=True, populate_existing=True
            )
            if stored is None:
                if kind.refused is not None:
                    await kind.refused(session, household)
                raise
        else:
            await _written(session, kind, writing, record, principal=principal, created=True)
            return Applied(Outcome.created, record, household)

    if stored.household_id != household.id:
        owner = await session.get(Household, stored.household_id)
        if owner is None or not principal.covers(owner.village_code):
            raise RecordNotFound(
                Text(
                    "{kind_record_type} {record_id} is not visible to you",
                    kind_record_type=kind.record_type.value,
                    record_id=record_id,
                )
            )
        raise InvalidInput.field(
            "body.household_id", Text("a record cannot move to another household"), type="immutable"
        )
    outcome = decide(
        stored_revision=stored.revision,
        stored_hash=stored.content_hash,
        revision=data.revision,
        new_hash=new_hash,
    )
    if outcome is Outcome.updated:
        if not _may_edit(principal, stored, household.village_code):
            raise Forbidden(
                Text(
                    "only the record's author, the village's first secretary or the "
                    "county admin may change it"
                )
            )
        if kind.check is not None:
            if batch:
                await session.flush()
            await kind.check(session, household, data, stored)
        writing = RecordWriting(model=kind.model, record=stored, household=household, data=data)
        await publish(session, writing)
        if not principal.may_see_pii(household.village_code):
            convert.keep_what_was_shown(stored, columns)
        for name, value in columns.items():
            setattr(stored, name, value)
        stored.revision = data.revision
        stored.content_hash = new_hash
        stored.updated_at = now
        stored.updated_by = principal.id
        if not batch:
            await session.flush()
        await _written(
            session, kind, writing, stored, principal=principal, created=False, batch=batch
        )
    return Applied(outcome, stored, household)


async def _written(
    session: AsyncSession,
    kind: Kind,
    writing: RecordWriting,
    record: RecordColumns,
    *,
    principal: Principal,
    created: bool,
    batch: bool = False,
) -> None:
    """Publish RecordWritten; outside a batch, flush what its subscribers added."""
    await publish(
        session,
        RecordWritten(
            record_type=kind.record_type.value,
            record=record,
            household=writing.household,
            principal=principal,
            created=created,
            writing=writing,
        ),
    )
    if not batch:
        await session.flush()


async def keep_measure_history(session: AsyncSession, event: RecordWritten) -> None:
    """Subscriber: every revision of a measure, for its progress over time."""
    record = event.record
    if isinstance(record, Measure):
        session.add(
            MeasureRevision(
                measure_id=record.id,
                household_id=record.household_id,
                revision=record.revision,
                status=record.status,
                progress_pct=record.progress_pct,
                received_at=record.updated_at,
                author_id=event.principal.id,
            )
        )


# --- reading ---------------------------------------------------------------------------------


async def load_for_update(
    session: AsyncSession, kind: Kind, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """The stored records of `ids` (those that exist), locked for this transaction."""
    found: dict[uuid.UUID, Any] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        rows = await session.scalars(
            select(kind.model).where(col(kind.model.id).in_(chunk)).with_for_update()
        )
        found.update({row.id: row for row in rows})
    return found


async def get_record(
    session: AsyncSession, *, principal: Principal, kind: Kind, record_id: uuid.UUID
) -> tuple[RecordColumns, Household]:
    """One record of a household in the caller's villages; RecordNotFound otherwise."""
    row = (
        await session.execute(
            select(kind.model, Household)
            .join(Household, col(Household.id) == col(kind.model.household_id))
            .where(col(kind.model.id) == record_id, principal.within(col(Household.village_code)))
        )
    ).first()
    if row is None:
        raise RecordNotFound(
            Text(
                "{kind_record_type} {record_id} does not exist or is not visible to you",
                kind_record_type=kind.record_type.value,
                record_id=record_id,
            )
        )
    return row[0], row[1]


async def list_records(
    session: AsyncSession,
    *,
    principal: Principal,
    kind: Kind,
    household_id: uuid.UUID,
    page: PageParams,
) -> tuple[list[Any], str | None, Household]:
    """A household's records of one type, newest first (by the server's first receipt)."""
    household = await households_service.get_household(
        session, principal=principal, household_id=household_id
    )
    model = kind.model
    stmt = select(model).where(col(model.household_id) == household.id)
    rows, cursor = await paginate(
        session,
        stmt,
        keys=[col(model.received_at), col(model.id)],
        page=page,
        descending=True,
    )
    return rows, cursor, household
