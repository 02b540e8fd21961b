"""The hash chain of the audit log: how an entry is hashed, appended and checked.

Each entry stores the hash of the entry before it (`prev_hash`; the first one `GENESIS`) and its
own `hash = sha256(canonical JSON of its fields + prev_hash)`. `seq` numbers the entries 1, 2, 3…
without gaps. Editing an entry changes what its hash should be; deleting one leaves a gap or a
link to a hash that is gone; inserting one leaves the next entry linking past it. `seq` is not
hashed: the links alone fix the order, so a renumbering to hide an insertion or a deletion still
breaks them, and `verify` can tell which of the three it was.

The chain is appended once per write transaction, at its commit (`app.audit.capture`): on
PostgreSQL, where several API instances write in parallel, under a transaction-level advisory
lock taken just before the tail is read and held to the commit; SQLite has one writer.
Deleting the newest entries leaves no trace in the chain itself: compare the tail `verify`
reports with one noted earlier.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit.models import AuditEntry

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the chain's tail ("fieldsync audit" in ASCII, truncated).
LOCK_KEY = 0x66_73_61_75_64_69_74
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# Fields of an entry that its hash covers, besides `prev_hash`.
HASHED = (
    "id",
    "at",
    "actor_id",
    "actor_role",
    "device_id",
    "client_address",
    "action",
    "entity_type",
    "entity_id",
    "household_id",
    "region_code",
    "changes",
)
# Rows per multi-row INSERT (16 parameters a row): inside both drivers' parameter limits.
_INSERT = insert(AuditEntry)
_COLUMNS = [col(getattr(AuditEntry, name)) for name in ("seq", "hash", "prev_hash", *HASHED)]
_TAIL = select(col(AuditEntry.seq), col(AuditEntry.hash)).order_by(col(AuditEntry.seq).desc())


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of the entry's canonical JSON followed by `prev_hash`."""
    canonical = json.dumps(
        {name: _plain(fields.get(name)) for name in HASHED},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256((canonical + prev_hash).encode()).hexdigest()


def append(connection: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Chain `entries` (dicts of the `HASHED` fields) after the tail and insert them: one tail
    read and one executemany INSERT, however many there are (a statement compiled once, unlike
    a multi-row VALUES of each size). Runs at the end of a transaction."""
    if not entries:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK, {"key": LOCK_KEY})
    tail = connection.execute(_TAIL.limit(1)).first()
    seq, prev_hash = (int(tail[0]), str(tail[1])) if tail is not None else (0, GENESIS)
    rows = []
    for fields in entries:
        seq += 1
        digest = entry_hash(fields, prev_hash)
        rows.append({**fields, "seq": seq, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    connection.execute(_INSERT, rows)


class Tampering(StrEnum):
    edited = "edited"  # 被修改
    deleted = "deleted"  # 被删除
    inserted = "inserted"  # 被插入


@dataclass(frozen=True)
class Broken:
    """The first entry where the chain breaks, and how."""

    seq: int  # the entry named (for a deletion: the first missing number)
    entry_id: uuid.UUID | None  # None: the entry is gone
    tampering: Tampering
    reason: str


@dataclass(frozen=True)
class Verified:
    count: int
    last_seq: int
    last_hash: str
    broken: Broken | None


_PAGE = 1000


async def verify(
    session: AsyncSession, *, progress: Callable[[int], None] | None = None
) -> Verified:
    """Walk the chain in `seq` order and report the first edited, deleted or inserted entry."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    seen: dict[str, int] = {GENESIS: 0}  # hash → seq of the entries walked
    after: int | None = None

    async def page() -> list[Any]:
        nonlocal after
        # Plain rows, not ORM objects: a long chain must not pile up in the identity map.
        stmt = select(*_COLUMNS).order_by(col(AuditEntry.seq)).limit(_PAGE)
        if after is not None:
            stmt = stmt.where(col(AuditEntry.seq) > after)
        rows = list((await session.execute(stmt)).all())
        if rows:
            after = rows[-1].seq
        return rows

    pending = await page()
    while pending:
        row = pending.pop(0)
        if not pending:
            pending = await page()
        following = pending[0] if pending else None
        broken = _check(row, following, expected_seq, expected_prev, seen)
        if broken is not None:
            if broken.tampering is Tampering.inserted and broken.entry_id is None:
                entry_id = await session.scalar(
                    select(col(AuditEntry.id)).where(col(AuditEntry.seq) == broken.seq)
                )
                broken = Broken(broken.seq, entry_id, broken.tampering, broken.reason)
            return Verified(count, expected_seq - 1, expected_prev, broken)
        seen[row.hash] = row.seq
        expected_prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
        if progress is not None and count % _PAGE == 0:
            progress(count)
    return Verified(count, expected_seq - 1, expected_prev, None)


def _fields(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in HASHED}


def _check(
    row: Any,
    following: Any,
    expected_seq: int,
    expected_prev: str,
    seen: dict[str, int],
) -> Broken | None:
    own_ok = entry_hash(_fields(row), row.prev_hash) == row.hash
    if row.seq != expected_seq:
        return Broken(
            expected_seq,
            None,
            Tampering.deleted,
            f"序号 {expected_seq} 的条目缺失，下一条是序号 {row.seq}",
        )
    if row.prev_hash != expected_prev:
        linked = seen.get(row.prev_hash)
        if linked is not None:
            # It links to an earlier entry: the ones after that were put in between.
            return Broken(
                linked + 1,
                None,
                Tampering.inserted,
                f"序号 {row.seq} 的条目链接到序号 {linked}，其间的条目是插入的",
            )
        if own_ok:
            return Broken(
                row.seq,
                row.id,
                Tampering.deleted,
                f"序号 {row.seq} 的前一条目已被删除（prev_hash 与前一条目的哈希不符）",
            )
        return Broken(row.seq, row.id, Tampering.edited, f"序号 {row.seq} 的条目被修改（哈希不符）")
    if not own_ok:
        if following is not None and following.prev_hash == expected_prev:
            return Broken(
                row.seq,
                row.id,
                Tampering.inserted,
                f"序号 {row.seq} 的条目是插入的（下一条目链接到它之前的条目）",
            )
        return Broken(row.seq, row.id, Tampering.edited, f"序号 {row.seq} 的条目被修改（哈希不符）")
    return None
