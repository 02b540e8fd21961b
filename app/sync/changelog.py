"""The change log the sync feed reads, kept by the database session itself.

Every flush that inserts or changes a household or a field record moves that object's row in
`sync_change` to a new sequence number, in the same transaction. Because the log is written by a
session event rather than by each service, no write path (API, batch sync, conflict resolution,
demo seed) can forget it.

A position in the log is the pair (txid, seq); the feed reads in position order, never beyond
the watermark below which every writing transaction has ended (`watermark`):

- SQLite has one writer at a time: `txid` is 0 and `seq` comes from the `sync_counter` row,
  taken under the write lock, so numbers follow commit order.
- PostgreSQL writers run in parallel, with no lock in common: `txid` is the writing
  transaction's id and `seq` the next value of a sequence. Transaction ids follow the order
  transactions started, not the order they commit, so the watermark stays below the oldest
  transaction of this database still running: whatever commits later has an id above every
  position already delivered, and no change is skipped or sent twice.

A household that moves to another village leaves a `delete` row behind in the old village for
itself and for each of its records, and gets `upsert` rows in the new one. A department alert is
placed by a village column of its own (the household's village when it was imported): it moves
only when that column changes, the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, literal, not_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, attributes
from sqlalchemy.orm.util import identity_key
from sqlmodel import col

from app.core.base import utcnow
from app.households.models import Household
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.records.models import IncomeSnapshot, Measure, Visit
from app.sync.models import Change, ChangeCounter

# Entity types as the feed names them.
HOUSEHOLD = "household"
# Records of a household, in its village; their version is their revision. A monitoring case's
# procedure (status, steps) changes its row without a new revision: it is sent again, with the
# same version and its new status and steps.
RECORD_TYPES: dict[type[Any], str] = {
    Visit: "visit",
    IncomeSnapshot: "income_snapshot",
    Measure: "measure",
    MonitoringCase: "monitoring_case",
}
MONITORING_ALERT = "monitoring_alert"
# Objects of a household placed by a village column of their own, versioned by `revision`.
PLACED: dict[type[Any], str] = {MonitoringAlert: MONITORING_ALERT}
ENTITY_TYPES = (HOUSEHOLD, *RECORD_TYPES.values(), *PLACED.values())

UPSERT = "upsert"
DELETE = "delete"


@dataclass(frozen=True)
class Entry:
    entity_type: str
    entity_id: uuid.UUID
    region_code: str
    household_id: uuid.UUID
    op: str
    version: int


# Built once: these run at every flush that changes a household or a record.
_ALLOCATE = (
    update(ChangeCounter)
    .where(col(ChangeCounter.id) == 1)
    .values(value=col(ChangeCounter.value) + bindparam("count"))
    .returning(col(ChangeCounter.value))
)


def _upsert_statement(dialect: Any) -> Any:
    stmt = dialect.insert(Change)
    return stmt.on_conflict_do_update(
        index_elements=["entity_type", "entity_id", "region_code"],
        set_={
            "household_id": stmt.excluded.household_id,
            "txid": stmt.excluded.txid,
            "seq": stmt.excluded.seq,
            "op": stmt.excluded.op,
            "version": stmt.excluded.version,
            "changed_at": stmt.excluded.changed_at,
        },
    )


_UPSERT = {"postgresql": _upsert_statement(postgresql), "sqlite": _upsert_statement(sqlite)}
_INSERT = {"postgresql": postgresql.insert(Change), "sqlite": sqlite.insert(Change)}

# PostgreSQL numbers a row in the INSERT itself: the writing transaction's id and the next value
# of a sequence (no round trip, no lock, no counter row that every writer would queue on).
SEQUENCE = "sync_change_seq"
_PG_POSITION = {
    "txid": text("pg_current_xact_id()::text::bigint"),
    "seq": text(f"nextval('{SEQUENCE}')"),
}
# Rows per multi-row INSERT (8 parameters a row): inside both drivers' parameter limits.
_CHUNK = 1000


def _allocate(connection: Connection, count: int) -> int:
    """Take `count` numbers from the counter (SQLite); returns the last."""
    last = connection.execute(_ALLOCATE, {"count": count}).scalar_one_or_none()
    if last is None:
        raise RuntimeError("sync_counter has no row: run the migrations")
    return int(last)


def _rows(connection: Connection, entries: list[Entry], now: datetime) -> list[dict[str, Any]]:
    """Rows of `sync_change` for `entries`, positioned in their order."""
    rows: list[dict[str, Any]] = [
        {
            "entity_type": e.entity_type,
            "entity_id": e.entity_id,
            "region_code": e.region_code,
            "household_id": e.household_id,
            "op": e.op,
            "version": e.version,
            "changed_at": now,
        }
        for e in entries
    ]
    if connection.dialect.name == "postgresql":
        for row in rows:
            row.update(_PG_POSITION)
    else:
        first = _allocate(connection, len(rows)) - len(rows) + 1
        for i, row in enumerate(rows):
            row.update(txid=0, seq=first + i)
    return rows


def _write(connection: Connection, statements: dict[str, Any], entries: list[Entry]) -> None:
    """`entries` in a constant number of multi-row statements, however many there are."""
    if not entries:
        return
    rows = _rows(connection, entries, utcnow())
    statement = statements[connection.dialect.name]
    for start in range(0, len(rows), _CHUNK):
        connection.execute(statement.values(rows[start : start + _CHUNK]))


def _upsert(connection: Connection, entries: list[Entry]) -> None:
    # One row per (object, village), the last entry winning: a statement touches a row once.
    latest = {(e.entity_type, e.entity_id, e.region_code): e for e in entries}
    _write(connection, _UPSERT, list(latest.values()))


Position = tuple[int, int]  # (txid, seq)
# The highest seq: (txid, MAX_SEQ) is after every change of transaction txid.
MAX_SEQ = 2**62

# The oldest transaction of this database that is still running, found as PostgreSQL's own
# visibility check would: transaction ids below the snapshot's xmax that are not in its list of
# running ones have ended. The list is cluster-wide; a running transaction counts only if it
# holds a lock on a relation of this database (every transaction that wrote here does, from
# before it got its id until it ends), so another database's long transaction holds nothing
# back. pg_locks shows transaction ids in 32 bits, the snapshot in 64.
_RUNNING = text(
    """
    SELECT pg_snapshot_xmax(s)::text::bigint,
           (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x
             WHERE x::text::bigint % 4294967296 IN (
               SELECT t.transactionid::text::bigint FROM pg_locks AS t
                WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
                  AND t.pid IN (SELECT r.pid FROM pg_locks AS r
                                 WHERE r.locktype = 'relation' AND r.database = d.oid))),
           pg_current_xact_id_if_assigned()::text::bigint
      FROM pg_current_snapshot() AS s, pg_database AS d
     WHERE d.datname = current_database()
    """
)


# Set on a session whose transaction wrote changes (see `watermark`).
_WROTE = "fieldsync_wrote_changes"


def wrote_changes(session: AsyncSession) -> bool:
    """Whether the session's transaction wrote changes (they are visible to it alone)."""
    return bool(session.info.get(_WROTE))


async def watermark(session: AsyncSession) -> Position:
    """How far the feed may read now: every change at or before this position is committed (or
    was rolled back), and no change will ever be written there again.

    Read it before the rows, in a statement of its own: the rows must come from a later
    snapshot, which sees every transaction that ended before this one was taken. A transaction
    that wrote changes itself sees them too (the tests, the CLI); it must then be the only
    writer, as PostgreSQL cannot tell it which transactions that started before it are still
    to come. A request reading the feed writes no changes.
    """
    if session.get_bind().dialect.name != "postgresql":
        counter = await session.get(ChangeCounter, 1, populate_existing=True)
        return (0, counter.value if counter is not None else 0)
    xmax, oldest, own = (await session.execute(_RUNNING)).one()
    if own is not None and session.info.get(_WROTE):
        # Up to this transaction's last change: its later ones come after, and so does
        # whatever others commit after it (their ids are above its own).
        last = await session.scalar(text(f"SELECT currval('{SEQUENCE}')"))
        return (int(own), int(last))
    bound = min(xmax, oldest) if oldest is not None else xmax
    return (int(bound) - 1, MAX_SEQ)


def after(position: Position) -> Any:
    """Rows of the log after `position`."""
    return tuple_(col(Change.txid), col(Change.seq)) > tuple_(
        literal(position[0]), literal(position[1])
    )


def upto(position: Position) -> Any:
    """Rows of the log at or before `position`."""
    return not_(after(position))


def position_of(row: Change) -> Position:
    return (row.txid, row.seq)


def _changed(session: Session, obj: Any) -> bool:
    return obj in session.new or session.is_modified(obj, include_collections=False)


def _villages(
    session: Session, connection: Connection, household_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    found: dict[uuid.UUID, str] = {}
    missing = []
    for household_id in set(household_ids):
        household = session.identity_map.get(identity_key(Household, household_id))
        if household is not None:
            found[household_id] = household.village_code
        else:
            missing.append(household_id)
    if missing:
        rows = connection.execute(
            select(col(Household.id), col(Household.village_code)).where(
                col(Household.id).in_(missing)
            )
        )
        found.update({row[0]: row[1] for row in rows})
    return found


def _moved_entries(connection: Connection, household: Household, old_village: str) -> list[Entry]:
    """A household that changed village: deletes in the old one, upserts in the new one."""
    rows = connection.execute(
        select(col(Change.entity_type), col(Change.entity_id), col(Change.version)).where(
            col(Change.household_id) == household.id,
            col(Change.region_code) == old_village,
            col(Change.op) == UPSERT,
            col(Change.entity_type).not_in([HOUSEHOLD, *PLACED.values()]),
        )
    ).all()
    entries = [Entry(HOUSEHOLD, household.id, old_village, household.id, DELETE, household.version)]
    for entity_type, entity_id, version in rows:
        entries.append(Entry(entity_type, entity_id, old_village, household.id, DELETE, version))
        entries.append(
            Entry(entity_type, entity_id, household.village_code, household.id, UPSERT, version)
        )
    return entries


def _after_flush(session: Session, _context: Any) -> None:
    households: list[Household] = []
    records: list[tuple[str, Any]] = []
    placed: list[tuple[str, Any]] = []
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Household):
            if _changed(session, obj):
                households.append(obj)
        elif (record_type := RECORD_TYPES.get(type(obj))) is not None and _changed(session, obj):
            records.append((record_type, obj))
        elif (entity_type := PLACED.get(type(obj))) is not None and _changed(session, obj):
            placed.append((entity_type, obj))
    if not households and not records and not placed:
        return

    connection = session.connection()
    entries: list[Entry] = []
    for household in households:
        history = attributes.get_history(household, "village_code")
        if history.deleted and household not in session.new:
            for old_village in history.deleted:
                if old_village != household.village_code:
                    entries.extend(_moved_entries(connection, household, old_village))
        entries.append(
            Entry(
                HOUSEHOLD,
                household.id,
                household.village_code,
                household.id,
                UPSERT,
                household.version,
            )
        )
    villages = _villages(session, connection, (r.household_id for _, r in records))
    for record_type, record in records:
        entries.append(
            Entry(
                record_type,
                record.id,
                villages[record.household_id],
                record.household_id,
                UPSERT,
                record.revision,
            )
        )
    for entity_type, obj in placed:
        entries.extend(_placed_entries(session, entity_type, obj))
    _upsert(connection, entries)
    session.info[_WROTE] = True


def _placed_entries(session: Session, entity_type: str, obj: Any) -> list[Entry]:
    """An object placed by its own `village_code`: an upsert there, a delete where it was."""
    entries = []
    history = attributes.get_history(obj, "village_code")
    if history.deleted and obj not in session.new:
        for old_village in history.deleted:
            if old_village != obj.village_code:
                entries.append(
                    Entry(entity_type, obj.id, old_village, obj.household_id, DELETE, obj.revision)
                )
    entries.append(
        Entry(entity_type, obj.id, obj.village_code, obj.household_id, UPSERT, obj.revision)
    )
    return entries


async def log_inserted(
    session: AsyncSession,
    entity_type: str,
    rows: Iterable[tuple[uuid.UUID, uuid.UUID, str, int]],
) -> None:
    """Log new objects placed by their own village that a bulk Core INSERT wrote (the flush
    hook sees only ORM objects): `rows` are (id, household_id, village_code, revision), e.g.
    from the statement's RETURNING. In the same transaction, like every other change; one
    multi-row INSERT, as no row of theirs can be in the log yet."""
    if entity_type not in PLACED.values():
        raise ValueError(f"{entity_type} is not logged by its own village")
    entries = [
        Entry(entity_type, entity_id, village, household_id, UPSERT, revision)
        for entity_id, household_id, village, revision in rows
    ]
    if entries:
        await session.run_sync(lambda sync: _write(sync.connection(), _INSERT, entries))
        session.info[_WROTE] = True


def install() -> None:
    """Keep the change log on every ORM session (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_transaction_end", _after_transaction_end)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)
