"""The chain stays one line while writers commit in parallel (PostgreSQL: several API
instances; SQLite: one writer at a time). These tests commit for real, in a database of their
own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from app.audit import chain
from app.audit.models import AuditEntry
from app.auth.principal import Caller, remember_caller
from app.core.db import transaction
from app.main import create_app
from app.records import service as records_service
from app.records.vocabulary import RecordType
from tests.builders import VILLAGE_A1, token_for
from tests.committed import Committed, committed_world, migrated_database
from tests.records.bodies import visit_body
from tests.webhooks.helpers import principal_of

WRITERS = 12


@pytest.fixture(scope="module")
def own_database(tmp_root: Path) -> Iterator[str]:
    with migrated_database(tmp_root) as url:
        yield url


@pytest.fixture(scope="module")
async def built(own_database: str) -> AsyncIterator[Committed]:
    async with committed_world(own_database, pool_size=WRITERS + 2) as built:
        yield built


async def test_parallel_writers_append_one_unbroken_chain(built: Committed) -> None:
    writer = principal_of(built.world.users["officer_a1"], (VILLAGE_A1,))
    household = built.world.households["a1"].id
    kind = records_service.KINDS[RecordType.visit]

    async def write(n: int) -> None:
        async with transaction(built.state, writing=True) as session:
            remember_caller(session.info, Caller(writer, f"10.0.0.{n}"))
            await records_service.apply_record(
                session,
                principal=writer,
                kind=kind,
                record_id=uuid.uuid4(),
                data=kind.write.model_validate(visit_body(household, 1)),
            )
            await asyncio.sleep(0)  # let the others in before this one commits

    async with transaction(built.state, writing=False) as session:
        before = int(await session.scalar(select(func.count(col(AuditEntry.id)))) or 0)
    await asyncio.gather(*(write(n) for n in range(WRITERS)))

    async with transaction(built.state, writing=False) as session:
        report = await chain.verify(session)
        addresses = set(
            (
                await session.scalars(
                    select(AuditEntry.client_address).where(col(AuditEntry.entity_type) == "visit")
                )
            ).all()
        )
    assert report.broken is None
    assert report.count == report.last_seq == before + WRITERS
    assert addresses == {f"10.0.0.{n}" for n in range(WRITERS)}


async def test_a_streamed_write_through_the_real_dependencies_names_its_caller(
    built: Committed,
) -> None:
    """A record PUT authenticates in a transaction of its own and writes in another (as the
    app runs, without the tests' shared session): the entry still names the caller and device."""
    officer = built.world.users["officer_a1"]
    async with transaction(built.state, writing=True) as session:
        token = await token_for(session, officer, device_id="android-stream-1")
    app = create_app()
    app.state.sessionmaker = built.state.sessionmaker
    visit_id = uuid.uuid4()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.put(
            f"/api/v1/visits/{visit_id}",
            json=visit_body(built.world.households["a1"].id, 1),
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text

    async with transaction(built.state, writing=False) as session:
        entry = await session.scalar(
            select(AuditEntry).where(col(AuditEntry.entity_id) == str(visit_id))
        )
    assert entry is not None and entry.action == "create"
    assert (entry.actor_id, entry.device_id) == (officer.id, "android-stream-1")
    assert entry.client_address == "127.0.0.1" and entry.region_code == VILLAGE_A1
