"""A fresh deployment for tests against a real server process: its own database (migrated with
the real migrations, minimally seeded: two villages, one officer, twenty households; a demo
seed costs 20 s) and `fieldsync serve` on a loopback port (see tests.sync.server_helpers for why
restarts are forked). The database is checked directly, through an engine of the test's own,
never through the API.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from app.core import migrations
from app.core.config import get_settings
from app.core.db import make_engine, make_sessionmaker
from app.sync.models import SyncBatch
from app.users.models import Role
from app.wiring import assemble
from tests.builders import (
    COUNTY_A,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    make_household,
    make_region,
    make_user,
)
from tests.databases import fresh_database
from tests.sync.server_helpers import Server, free_port, server_env

T = TypeVar("T")
OFFICER = "officer.server-test"
HOUSEHOLDS_PER_VILLAGE = 10


class Database:
    """The server's database, read directly by the test: its own engine and event loop.

    NullPool: the test holds no connection between checks, so on PostgreSQL the only other
    backends of the database are the server's.
    """

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        self.engine = make_engine(get_settings(), url=url, poolclass=NullPool)
        assemble()
        self.sessionmaker = make_sessionmaker(self.engine)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(work)

    def scalars(self, statement: Any) -> list[Any]:
        async def _read() -> list[Any]:
            async with self.sessionmaker() as session:
                return list(await session.scalars(statement))

        return self.run(_read())

    def rows(self, statement: Any) -> list[Any]:
        async def _read() -> list[Any]:
            async with self.sessionmaker() as session:
                return list((await session.execute(statement)).all())

        return self.run(_read())

    def wait_for_server_backends_to_end(self, timeout: float = 30) -> None:
        """PostgreSQL: wait until the killed server's backends have rolled back and exited.

        A COMMIT the server sent just before it died still runs on its backend: only once the
        backend is gone is what the test reads final.
        """
        if self.engine.dialect.name != "postgresql":
            return  # SQLite: nothing outlives the server process
        others = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + timeout
        while self.scalars(others)[0] > 0:
            assert time.monotonic() < deadline, "the killed server's backends did not end"
            time.sleep(0.02)

    def wait_for_batch(self, batch_id: uuid.UUID, timeout: float = 60) -> None:
        """Return as soon as the batch's row is committed (polled on one connection)."""

        async def _poll() -> None:
            deadline = time.monotonic() + timeout
            query = select(col(SyncBatch.id)).where(col(SyncBatch.id) == batch_id)
            async with self.engine.connect() as conn:
                while (await conn.execute(query)).first() is None:
                    await conn.rollback()  # a fresh snapshot for the next look
                    assert time.monotonic() < deadline, f"batch {batch_id} never committed"

        self.run(_poll())

    def close(self) -> None:
        self.run(self.engine.dispose())
        self._runner.close()


async def _seed(db: Database) -> list[uuid.UUID]:
    """Two villages, an officer for both, ten households in each; their ids."""
    async with db.sessionmaker() as session, session.begin():
        await make_region(session, COUNTY_A, "莘县")
        await make_region(session, TOWN_A1, "燕店镇")
        await make_region(session, VILLAGE_A1, "王庄村", population=1286)
        await make_region(session, VILLAGE_A2, "后屯村", population=1712)
        await make_user(
            session, username=OFFICER, role=Role.officer, regions=[VILLAGE_A1, VILLAGE_A2]
        )
        households = [
            await make_household(session, village=village, number=f"{village}{seq:04d}")
            for village in (VILLAGE_A1, VILLAGE_A2)
            for seq in range(1, HOUSEHOLDS_PER_VILLAGE + 1)
        ]
        return [h.id for h in households]


@dataclass
class Deployment:
    server: Server
    db: Database
    households: list[uuid.UUID]


@contextmanager
def deploy(tmp_path: Path, **env: str) -> Iterator[Deployment]:
    """A fresh, migrated, minimally seeded database and `fieldsync serve` on it, started
    (`env`: further FIELDSYNC_ settings of the server)."""
    with fresh_database(tmp_path) as url:
        migrations.upgrade(url)
        db = Database(url)
        try:
            households = db.run(_seed(db))
            server_settings = server_env(url, tmp_path / "data", port=free_port(), **env)
            with Server(server_settings, log_path=tmp_path / "server.log") as server:
                server.start()
                yield Deployment(server, db, households)
        finally:
            db.close()
