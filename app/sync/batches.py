"""Receiving a batch: every record applied or none, once, whatever the network does.

The batch row is inserted first, so a second delivery of the same batch waits on its primary key
(PostgreSQL) or on the write lock (SQLite) and then finds it; the results are stored in the same
transaction as the records, so a retry gets the same answer and a crash leaves no trace.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.config import Settings
from app.core.db import Transactions
from app.core.errors import AppError, FieldError, field_errors, invalid_fields
from app.core.events import publish
from app.core.i18n import Text
from app.devices.service import touch_device
from app.households import service as households_service
from app.households.errors import HouseholdNotFound
from app.households.models import Household
from app.households.schemas import HouseholdUpdate
from app.records import service as records_service
from app.records.schemas import RecordWrite, Revision
from app.records.vocabulary import Outcome, RecordType
from app.sync import held
from app.sync.conflicts import masked
from app.sync.errors import BatchIdReused, BatchNotFound, BatchTooLarge, DeviceMismatch
from app.sync.events import BatchReceived
from app.sync.models import SyncBatch, SyncConflict
from app.sync.photo_backlog import photo_backlog
from app.sync.schemas import ItemStatus, ItemType, SyncBatchIn, SyncItem
from app.users import service as users_service


def body_hash(batch: SyncBatchIn) -> str:
    """Hash of the batch as parsed: the same content sent plain or gzipped hashes alike."""
    return _sha256_of(batch.model_dump(mode="json"))


def _sha256_of(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_limits(batch: SyncBatchIn, settings: Settings) -> None:
    if len(batch.records) > settings.sync_max_records:
        raise BatchTooLarge(
            Text(
                "a batch holds at most {sync_max_records} records; this one has "
                "{batch_records_count}: split it",
                sync_max_records=settings.sync_max_records,
                batch_records_count=len(batch.records),
            ),
            limit_records=settings.sync_max_records,
        )


class _Rejected(Exception):
    def __init__(self, error: AppError) -> None:
        self.error = error


def _invalid(errors: list[FieldError]) -> _Rejected:
    return _Rejected(invalid_fields(errors))


def _uuid(value: Any, field: str) -> uuid.UUID:
    try:
        if isinstance(value, str):
            return uuid.UUID(value)
    except ValueError:
        pass
    raise _invalid([FieldError.of(field, Text("must be a UUID"), type="uuid_parsing")])


_REVISION: TypeAdapter[int] = TypeAdapter(Revision)
_VERSION: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=1)])


def _number(adapter: TypeAdapter[int], value: Any, field: str) -> int:
    """A revision or version, checked as the single endpoints check it."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise _invalid(field_errors(exc, field)) from None


def _rebase(error: AppError, prefix: str) -> AppError:
    """Field errors of the single endpoints (body.x) named as in the batch (records.3.data.x)."""
    if error.errors:
        error.errors = [
            e.model_copy(update={"field": prefix + e.field.removeprefix("body.")})
            for e in error.errors
        ]
    return error


def _rejected(item_type: str, item_id: str, error: AppError) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": item_type,
        "id": item_id,
        "status": ItemStatus.rejected.value,
        "code": error.code,
        "retryable": error.retryable,
        "detail": error.detail or error.title,
    }
    if error.errors:
        result["errors"] = [e.model_dump() for e in error.errors]
    return result


_STATUS = {
    Outcome.created: ItemStatus.created,
    Outcome.updated: ItemStatus.updated,
    Outcome.unchanged: ItemStatus.unchanged,
    Outcome.stale: ItemStatus.stale,
    Outcome.conflict: ItemStatus.conflict,
}


@dataclass(frozen=True)
class _Ready:
    """A record of the batch as far as it can be checked without the database."""

    kind: records_service.Kind
    record_id: uuid.UUID
    revision: int
    data: RecordWrite
    prepared: records_service.Prepared


# Per item of a batch: a record ready to apply, the result of one rejected already, or None
# (a household edit, checked against the database).
Prepared = list[_Ready | dict[str, Any] | None]


def _ready(index: int, item: SyncItem) -> _Ready:
    prefix = f"records.{index}."
    record_id = _uuid(item.id, prefix + "id")
    revision = _number(_REVISION, item.revision, prefix + "revision")
    if not isinstance(item.data, dict):
        raise _invalid(
            [FieldError.of(prefix + "data", Text("must be an object"), type="dict_type")]
        )
    kind = records_service.KINDS[RecordType(item.type)]
    try:
        data = kind.write.model_validate({**item.data, "revision": revision})
        prepared = records_service.prepare(kind, data)
    except ValidationError as exc:
        raise _invalid(field_errors(exc, prefix + "data.")) from None
    except AppError as exc:
        raise _Rejected(_rebase(exc, prefix + "data.")) from None
    return _Ready(kind, record_id, revision, data, prepared)


def prepare(batch: SyncBatchIn) -> Prepared:
    """What needs no database (parsing, validation, content hashes): done before the batch's
    transaction, so that the write lock (SQLite) is held for the writing alone."""
    prepared: Prepared = []
    for index, item in enumerate(batch.records):
        if not isinstance(item.type, str) or item.type not in _RECORD_TYPES:
            prepared.append(None)  # a household edit, or a type refused in the transaction
            continue
        try:
            prepared.append(_ready(index, item))
        except _Rejected as rejected:
            prepared.append(_rejected(*_named(item), rejected.error))
    return prepared


def _named(item: SyncItem) -> tuple[str, str]:
    item_type = item.type if isinstance(item.type, str) else str(item.type)
    return item_type, item.id if isinstance(item.id, str) else str(item.id)


async def _apply_record(
    session: AsyncSession,
    principal: Principal,
    index: int,
    item: SyncItem,
    ready: _Ready,
    batch: SyncBatch,
    cache: _Loaded,
) -> dict[str, Any]:
    prefix = f"records.{index}."
    kind, record_id, revision = ready.kind, ready.record_id, ready.revision
    try:
        applied = await records_service.apply_record(
            session,
            principal=principal,
            kind=kind,
            record_id=record_id,
            data=ready.data,
            households=cache.households,
            known=cache.records[kind.record_type],
            prepared=ready.prepared,
        )
    except HouseholdNotFound as exc:
        if cache.ended is None:
            cache.ended = await users_service.ended_regions(session, principal.id)
        row = await held.hold(
            session,
            principal=principal,
            ended=cache.ended,
            item=item,
            record_type=kind.record_type,
            record_id=record_id,
            revision=revision,
            household_id=ready.data.household_id,
            batch=batch,
        )
        if row is None:
            raise _Rejected(_rebase(exc, prefix + "data.")) from None
        return held.held_result(kind.record_type.value, row)
    except AppError as exc:
        raise _Rejected(_rebase(exc, prefix + "data.")) from None
    result: dict[str, Any] = {
        "type": item.type,
        "id": str(record_id),
        "status": _STATUS[applied.outcome].value,
        "version": applied.record.revision,
    }
    if applied.outcome is Outcome.conflict:
        result.update(
            code="revision_conflict",
            retryable=False,
            detail=f"revision {revision} is stored with other content: edit it as a new revision",
        )
    elif applied.outcome is Outcome.stale:
        result.update(
            code="stale_revision",
            retryable=False,
            detail=f"the server holds revision {applied.record.revision}, later than {revision}",
        )
    return result


def _edit_hash(household_id: uuid.UUID, base_version: int, changes: dict[str, Any]) -> str:
    return _sha256_of([str(household_id), base_version, changes])


async def _apply_household_edit(
    session: AsyncSession, principal: Principal, index: int, item: SyncItem, batch: SyncBatch
) -> dict[str, Any]:
    prefix = f"records.{index}."
    household_id = _uuid(item.id, prefix + "id")
    base_version = _number(_VERSION, item.base_version, prefix + "base_version")
    if not isinstance(item.changes, dict):
        raise _invalid(
            [FieldError.of(prefix + "changes", Text("must be an object"), type="dict_type")]
        )
    try:
        update = HouseholdUpdate.model_validate(item.changes)
    except ValidationError as exc:
        raise _invalid(field_errors(exc, prefix + "changes.")) from None
    changes = update.model_dump(exclude_unset=True, mode="json")
    try:
        household = await households_service.get_household(
            session, principal=principal, household_id=household_id, for_update=True
        )
    except AppError as exc:
        raise _Rejected(exc) from None
    result: dict[str, Any] = {"type": item.type, "id": str(household_id)}
    if base_version > household.version:
        raise _invalid(
            [
                FieldError.of(
                    prefix + "base_version",
                    Text(
                        "the server's version is {household_version}; {base_version} was "
                        "never issued",
                        household_version=household.version,
                        base_version=base_version,
                    ),
                    type="ahead_of_server",
                )
            ]
        )
    if base_version < household.version:
        touched = await households_service.fields_changed_since(session, household, base_version)
        overlap = sorted(
            name
            for name, value in changes.items()
            if name in touched and getattr(household, name) != value
        )
        if overlap:
            conflict = await _record_conflict(
                session,
                principal=principal,
                household=household,
                batch=batch,
                base_version=base_version,
                changes=changes,
                overlap=overlap,
            )
            return {
                **result,
                "status": ItemStatus.conflict.value,
                "version": household.version,
                "code": "household_conflict",
                "retryable": False,
                "detail": "these fields were changed on the server since version "
                f"{base_version}: {', '.join(overlap)}",
                "conflict_id": str(conflict.id),
                "fields": overlap,
                "server_values": masked(
                    {name: getattr(household, name) for name in overlap},
                    reveal=principal.may_see_pii(household.village_code),
                ),
            }
    try:
        diff = await households_service.apply_changes(
            session, household, changes, principal=principal, field_prefix=prefix + "changes."
        )
    except AppError as exc:
        raise _Rejected(exc) from None
    status = ItemStatus.updated if diff else ItemStatus.unchanged
    return {**result, "status": status.value, "version": household.version}


async def _record_conflict(
    session: AsyncSession,
    *,
    principal: Principal,
    household: Household,
    batch: SyncBatch,
    base_version: int,
    changes: dict[str, Any],
    overlap: list[str],
) -> SyncConflict:
    """The open conflict for this edit: the same edit sent again finds the one already open."""
    digest = _edit_hash(household.id, base_version, changes)
    existing = await session.scalar(
        select(SyncConflict).where(
            col(SyncConflict.household_id) == household.id,
            col(SyncConflict.client_hash) == digest,
            col(SyncConflict.status) == "open",
        )
    )
    if existing is not None:
        return existing
    conflict = SyncConflict(
        household_id=household.id,
        village_code=household.village_code,
        batch_id=batch.id,
        device_id=batch.device_id,
        user_id=principal.id,
        base_version=base_version,
        server_version=household.version,
        fields=overlap,
        client_changes=changes,
        server_values={name: getattr(household, name) for name in overlap},
        client_hash=digest,
    )
    session.add(conflict)
    await session.flush()
    return conflict


_RECORD_TYPES = {t.value for t in RecordType}


@dataclass
class _Loaded:
    """What a batch looks up once rather than per record."""

    households: dict[uuid.UUID, Household] = field(default_factory=dict)
    records: dict[RecordType, dict[uuid.UUID, Any]] = field(default_factory=dict)
    # The regions taken from the uploader, looked up at its first record for a household it
    # cannot see.
    ended: list[str] | None = None


async def _load(session: AsyncSession, principal: Principal, prepared: Prepared) -> _Loaded:
    """The caller's households and the stored records the batch names, in one query per type
    (the records locked)."""
    ready = [r for r in prepared if isinstance(r, _Ready)]
    loaded = _Loaded(
        households=await households_service.visible_households(
            session, principal=principal, ids=[r.data.household_id for r in ready]
        )
    )
    for record_type in RecordType:
        kind = records_service.KINDS[record_type]
        wanted = [r.record_id for r in ready if r.kind.record_type is record_type]
        loaded.records[record_type] = await records_service.load_for_update(session, kind, wanted)
    return loaded


async def _apply_item(
    session: AsyncSession,
    principal: Principal,
    index: int,
    item: SyncItem,
    ready: _Ready | dict[str, Any] | None,
    batch: SyncBatch,
    cache: _Loaded,
) -> dict[str, Any]:
    if isinstance(ready, dict):
        return ready  # rejected before the transaction
    item_type, item_id = _named(item)
    # A record is rejected before anything of it is written (checks first, then writes), so a
    # rejected one leaves nothing behind without a savepoint of its own; anything unexpected
    # fails the whole batch.
    try:
        if ready is not None:
            return await _apply_record(session, principal, index, item, ready, batch, cache)
        if item_type == ItemType.household:
            return await _apply_household_edit(session, principal, index, item, batch)
        raise _invalid(
            [
                FieldError.of(
                    f"records.{index}.type",
                    Text("must be one of: {types}", types=", ".join(t.value for t in ItemType)),
                    type="enum",
                )
            ]
        )
    except _Rejected as rejected:
        return _rejected(item_type, item_id, rejected.error)


def _replay(stored: SyncBatch, *, principal: Principal, digest: str) -> dict[str, Any]:
    if stored.user_id != principal.id or stored.body_hash != digest:
        raise BatchIdReused(
            Text(
                "batch {stored_id} was already received with other content: a "
                "new batch needs a new batch_id",
                stored_id=stored.id,
            )
        )
    return stored.response


async def receive(
    transactions: Transactions, *, principal: Principal, batch: SyncBatchIn
) -> tuple[dict[str, Any], bool]:
    """Prepare a batch, then apply it in a transaction of its own.

    The batch's records are written in one flush at its end. A record that another request
    created meanwhile fails that flush: the batch is then applied once more, from the start,
    and judged against it (nothing of the first attempt remains).
    """
    prepared = prepare(batch)
    for attempt in (1, 2):
        try:
            async with transactions(writing=True) as session:
                return await receive_batch(
                    session, principal=principal, batch=batch, prepared=prepared
                )
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def receive_batch(
    session: AsyncSession,
    *,
    principal: Principal,
    batch: SyncBatchIn,
    prepared: Prepared | None = None,
) -> tuple[dict[str, Any], bool]:
    """Apply a batch (or recognise a retry): the response document and whether it is a replay."""
    if prepared is None:
        prepared = prepare(batch)
    digest = body_hash(batch)
    stored = await session.get(SyncBatch, batch.batch_id)
    if stored is not None:
        return _replay(stored, principal=principal, digest=digest), True
    if principal.device_id is not None and principal.device_id != batch.device_id:
        raise DeviceMismatch(
            Text(
                "this login belongs to device {principal_device_id}, not {batch_device_id}",
                principal_device_id=principal.device_id,
                batch_device_id=batch.device_id,
            )
        )
    if principal.device_id is None:
        # A login without a device: the batch names it, and its records are stamped with it.
        principal = replace(principal, device_id=batch.device_id)
    now = utcnow()
    await touch_device(
        session,
        batch.device_id,
        user_id=principal.id,
        app_version=batch.app_version,
        synced=True,
        now=now,
    )
    row = SyncBatch(
        id=batch.batch_id,
        user_id=principal.id,
        device_id=batch.device_id,
        app_version=batch.app_version,
        body_hash=digest,
        received_at=now,
        record_count=len(batch.records),
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        # The same batch, delivered twice at once: the other delivery committed it first.
        stored = await session.get(SyncBatch, batch.batch_id, populate_existing=True)
        if stored is None:
            raise
        return _replay(stored, principal=principal, digest=digest), True

    cache = await _load(session, principal, prepared)
    results = [
        await _apply_item(session, principal, index, item, ready, row, cache)
        for index, (item, ready) in enumerate(zip(batch.records, prepared, strict=True))
    ]
    await session.flush()  # the batch's records, a few multi-row statements per table
    counts = Counter(result["status"] for result in results)
    response = {
        "batch_id": str(row.id),
        "received_at": now.isoformat().replace("+00:00", "Z"),
        "results": results,
        "counts": {status.value: counts.get(status.value, 0) for status in ItemStatus},
        "missing_photos": await photo_backlog().of_author(session, principal.id),
    }
    for status in ItemStatus:
        setattr(row, status.value, counts.get(status.value, 0))
    row.response = response
    await publish(
        session,
        BatchReceived(
            principal=principal,
            batch_id=row.id,
            device_id=row.device_id,
            received_at=now,
            outcomes=tuple(
                (_household_named(item), result["status"])
                for item, result in zip(batch.records, results, strict=True)
            ),
        ),
    )
    await session.flush()
    return response, False


def _household_named(item: SyncItem) -> uuid.UUID | None:
    """The household a batch record names (its own id for a household edit), if readable."""
    if item.type == ItemType.household:
        raw = item.id
    else:
        raw = item.data.get("household_id") if isinstance(item.data, dict) else None
    try:
        return uuid.UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


async def get_batch(
    session: AsyncSession, *, principal: Principal, batch_id: uuid.UUID
) -> dict[str, Any]:
    """The stored response of one of the caller's batches."""
    stored = await session.get(SyncBatch, batch_id)
    if stored is None or stored.user_id != principal.id:
        raise BatchNotFound(
            Text("no batch {batch_id} of yours has been received", batch_id=batch_id)
        )
    return stored.response
