"""`audit verify` finds the first edited, deleted or inserted entry of the chain (raw SQL
tampering, as someone with database access would do it)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit import chain
from app.audit.models import AuditEntry
from app.core.base import utcnow
from tests.builders import World


@pytest.fixture
async def chained(session: AsyncSession, world: World) -> int:
    """The world's writes, committed: one entry each, chained. Returns how many."""
    await session.commit()
    count = await session.scalar(select(AuditEntry.seq).order_by(col(AuditEntry.seq).desc()))
    assert count is not None and count > 10
    return int(count)


async def _entry(session: AsyncSession, seq: int) -> AuditEntry:
    entry = await session.scalar(
        select(AuditEntry)
        .where(col(AuditEntry.seq) == seq)
        .execution_options(populate_existing=True)
    )
    assert entry is not None
    return entry


async def test_an_untouched_chain_verifies(session: AsyncSession, chained: int) -> None:
    walked: list[int] = []
    report = await chain.verify(session, progress=walked.append)
    assert report.broken is None
    assert report.count == report.last_seq == chained
    assert report.last_hash == (await _entry(session, chained)).hash
    # Seq 1 starts from the genesis hash, each entry links to the one before.
    assert (await _entry(session, 1)).prev_hash == chain.GENESIS
    assert (await _entry(session, 5)).prev_hash == (await _entry(session, 4)).hash


async def test_an_edited_entry_is_named(session: AsyncSession, chained: int) -> None:
    victim = await _entry(session, 7)
    await session.execute(text("UPDATE audit_entry SET client_address = '10.9.9.9' WHERE seq = 7"))

    report = await chain.verify(session)

    assert report.broken is not None
    assert (report.broken.seq, report.broken.entry_id) == (7, victim.id)
    assert report.broken.tampering is chain.Tampering.edited
    assert report.count == 6


async def test_a_deleted_entry_is_named(session: AsyncSession, chained: int) -> None:
    await session.execute(text("DELETE FROM audit_entry WHERE seq = 4"))

    report = await chain.verify(session)

    assert report.broken is not None
    assert report.broken.seq == 4 and report.broken.entry_id is None
    assert report.broken.tampering is chain.Tampering.deleted


async def test_a_deleted_entry_is_named_when_the_rest_is_renumbered(
    session: AsyncSession, chained: int
) -> None:
    await session.execute(text("DELETE FROM audit_entry WHERE seq = 4"))
    await _shift(session, from_seq=5, by=-1)
    moved = await _entry(session, 4)  # what was entry 5

    report = await chain.verify(session)

    assert report.broken is not None
    assert (report.broken.seq, report.broken.entry_id) == (4, moved.id)
    assert report.broken.tampering is chain.Tampering.deleted


async def _shift(session: AsyncSession, *, from_seq: int, by: int) -> None:
    """Renumber the entries from `from_seq` on by `by` (in two steps: seq is unique)."""
    await session.execute(
        text("UPDATE audit_entry SET seq = -seq WHERE seq >= :s"), {"s": from_seq}
    )
    await session.execute(text("UPDATE audit_entry SET seq = :by - seq WHERE seq < 0"), {"by": by})


@pytest.mark.parametrize("forged", [True, False], ids=["hash forged", "hash made up"])
async def test_an_inserted_entry_is_named(
    session: AsyncSession, chained: int, forged: bool
) -> None:
    before = await _entry(session, 2)
    await _shift(session, from_seq=3, by=1)
    fields = {
        "id": uuid.uuid4(),
        "at": utcnow(),
        "actor_id": None,
        "actor_role": None,
        "device_id": None,
        "client_address": None,
        "action": "delete",
        "entity_type": "household",
        "entity_id": str(uuid.uuid4()),
        "household_id": None,
        "region_code": None,
        "changes": {},
    }
    # Whoever knows how entries are hashed can make the new one fit its predecessor.
    digest = chain.entry_hash(fields, before.hash) if forged else "f" * 64
    await session.execute(
        insert(AuditEntry).values(**fields, seq=3, prev_hash=before.hash, hash=digest)
    )

    report = await chain.verify(session)

    assert report.broken is not None
    assert (report.broken.seq, report.broken.entry_id) == (3, fields["id"])
    assert report.broken.tampering is chain.Tampering.inserted
    assert report.count == (3 if forged else 2)
