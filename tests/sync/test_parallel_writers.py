"""The change feed while writers run in parallel: every change they commit is delivered exactly
once, and on PostgreSQL they do not wait for one another (no common write lock).

These tests commit for real, in a database of their own: what they check is what concurrent
transactions see of each other.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.auth.principal import Principal
from app.core.config import get_settings
from app.core.db import transaction
from app.records import service as records_service
from app.records.models import Visit
from app.records.vocabulary import RecordType
from app.sync import feed
from tests.builders import COUNTY_A, VILLAGE_A1, World
from tests.committed import committed_world, migrated_database
from tests.databases import BACKEND, POSTGRES_URL
from tests.records.bodies import visit_body
from tests.webhooks.helpers import principal_of

VISITS = RecordType.visit
PAGE = 7  # small pages: many cursors, each a chance to skip or repeat a change


@dataclass
class Env:
    engine: AsyncEngine
    state: Any
    world: World
    writer: Principal
    reader: Principal


@pytest.fixture(scope="module")
def own_database(tmp_root: Path) -> Iterator[str]:
    with migrated_database(tmp_root) as url:
        yield url


@pytest.fixture(scope="module")
async def env(own_database: str) -> AsyncIterator[Env]:
    async with committed_world(own_database, pool_size=12, max_overflow=4) as built:
        yield Env(
            built.engine,
            built.state,
            built.world,
            writer=principal_of(built.world.users["officer_a1"], (VILLAGE_A1,)),
            reader=principal_of(built.world.users["admin_a"], (COUNTY_A,)),
        )


async def _write_visit(session: AsyncSession, env: Env, visit_id: uuid.UUID, revision: int) -> None:
    kind = records_service.KINDS[VISITS]
    data = kind.write.model_validate(
        visit_body(env.world.households["a1"].id, revision, findings=f"第{revision}次走访")
    )
    await records_service.apply_record(
        session, principal=env.writer, kind=kind, record_id=visit_id, data=data
    )


async def _pull(env: Env, cursor: str | None) -> tuple[list[dict[str, Any]], str, bool]:
    async with transaction(env.state, writing=False) as session:
        page = await feed.read_changes(
            session, principal=env.reader, cursor=cursor, limit=PAGE, settings=get_settings()
        )
    return page["changes"], page["next_cursor"], page["has_more"]


class Replica:
    """What a phone holds: the latest version of each object, and every delivery it got."""

    def __init__(self) -> None:
        self.cursor: str | None = None
        self.versions: dict[tuple[str, str], int] = {}
        self.deliveries: list[tuple[str, str, int]] = []

    async def pull(self, env: Env) -> None:
        while True:
            changes, self.cursor, more = await _pull(env, self.cursor)
            for change in changes:
                key = (change["type"], change["id"])
                self.deliveries.append((*key, change["version"]))
                assert change["version"] > self.versions.get(key, 0), f"went back: {change}"
                self.versions[key] = change["version"]
            if not more:
                return


async def _stored_visits(env: Env) -> dict[tuple[str, str], int]:
    async with transaction(env.state, writing=False) as session:
        rows = (await session.execute(text("SELECT id, revision FROM visit"))).all()
    return {("visit", str(uuid.UUID(str(row[0])))): int(row[1]) for row in rows}


async def test_concurrent_writers_and_readers_see_every_change_exactly_once(env: Env) -> None:
    """Writers commit in random order, some roll back, while readers page through the feed;
    when all is done, each reader has every stored visit at its stored revision, and no
    (object, version) twice."""
    rng = random.Random(15)
    ids = [uuid.uuid4() for _ in range(24)]
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        for step in range(10):
            visit_id = ids[rng.randrange(len(ids))]
            try:
                async with transaction(env.state, writing=True) as session:
                    stored = await session.get(Visit, visit_id, with_for_update=True)
                    await _write_visit(
                        session, env, visit_id, (stored.revision + 1) if stored else 1
                    )
                    # Hold the transaction open a while: commits land out of start order.
                    await asyncio.sleep(rng.uniform(0, 0.03))
                    if (n + step) % 7 == 0:
                        raise _RollBack
            except _RollBack:
                pass

    async def reader(replica: Replica) -> None:
        while not stop.is_set():
            await replica.pull(env)
            await asyncio.sleep(rng.uniform(0, 0.01))

    # Cold start: a phone that already holds the world before the writers begin.
    replicas = [Replica() for _ in range(3)]
    for replica in replicas:
        await replica.pull(env)
    readers = [asyncio.create_task(reader(r)) for r in replicas]
    await asyncio.gather(*(writer(n) for n in range(6)))
    stop.set()
    await asyncio.gather(*readers)

    stored = await _stored_visits(env)
    assert stored, "the writers wrote nothing"
    for replica in replicas:
        await replica.pull(env)  # after the last commit: the rest arrives now
        visits = {k: v for k, v in replica.versions.items() if k[0] == "visit"}
        assert visits == stored
        assert len(replica.deliveries) == len(set(replica.deliveries)), "a change came twice"


class _RollBack(Exception):
    pass


postgresql_only = pytest.mark.skipif(
    BACKEND != "postgresql", reason="SQLite has one writer at a time by design"
)


@postgresql_only
async def test_writers_do_not_wait_for_each_other_and_the_feed_waits_for_the_older(
    env: Env,
) -> None:
    """A writes and stays open; B, started after A, writes and commits without waiting for A.
    B's change is held back while A may still commit below it; once A commits, both arrive,
    once each."""
    replica = Replica()
    await replica.pull(env)
    first, second = uuid.uuid4(), uuid.uuid4()
    maker = env.state.sessionmaker
    async with maker() as a:
        await _write_visit(a, env, first, 1)
        await a.flush()
        async with maker() as b:
            await asyncio.wait_for(_write_and_commit(b, env, second), timeout=5)
        await replica.pull(env)
        seen = {key for key in replica.versions if key[0] == "visit"}
        assert ("visit", str(second)) not in seen, "delivered past a transaction still open"
        await a.commit()
    await replica.pull(env)
    assert {("visit", str(first)), ("visit", str(second))} <= set(replica.versions)
    assert len(replica.deliveries) == len(set(replica.deliveries))


async def _write_and_commit(session: AsyncSession, env: Env, visit_id: uuid.UUID) -> None:
    await _write_visit(session, env, visit_id, 1)
    await session.commit()


@postgresql_only
async def test_a_long_transaction_in_another_database_holds_nothing_back(env: Env) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)
    other = await asyncpg.connect(dsn)
    try:
        await other.execute("BEGIN")
        await other.execute("SELECT pg_current_xact_id()")  # holds a transaction id
        replica = Replica()
        await replica.pull(env)
        visit_id = uuid.uuid4()
        async with transaction(env.state, writing=True) as session:
            await _write_visit(session, env, visit_id, 1)
        await replica.pull(env)
        assert ("visit", str(visit_id)) in replica.versions
    finally:
        await other.execute("ROLLBACK")
        await other.close()
