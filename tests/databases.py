"""Test databases: a temporary SQLite file, or a fresh PostgreSQL database created and dropped."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import SAVEPOINT_COMMITS

BACKEND = os.environ.get("FIELDSYNC_TEST_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
)
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"FIELDSYNC_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")


def fresh_database(tmp_dir: Path) -> contextlib.AbstractContextManager[str]:
    """The async URL of a new, empty database of the selected backend; dropped afterwards."""
    return new_database(BACKEND, tmp_dir, POSTGRES_URL)


@contextmanager
def new_database(backend: str, tmp_dir: Path, postgres_url: str) -> Iterator[str]:
    """Yield the async URL of a new, empty database of `backend`; drop it afterwards."""
    if backend == "sqlite":
        path = tmp_dir / f"fieldsync-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite+aiosqlite:///{path.as_posix()}"
        return
    # Only asyncpg is installed: administrative statements run in a short event loop of their own.
    import asyncio

    import asyncpg

    admin = make_url(postgres_url)
    name = f"fieldsync_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def joined_session(connection: AsyncConnection) -> AsyncSession:
    """A session on `connection` inside its open transaction: its commits only release
    savepoints, so whoever opened the transaction decides what stays."""
    session = AsyncSession(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    session.info[SAVEPOINT_COMMITS] = True
    return session


def savepoint_transactions(session: AsyncSession) -> Callable[..., Any]:
    """What `app.core.db.get_transactions` gives a route, as savepoints of the test's session."""

    @asynccontextmanager
    async def transaction(*, writing: bool) -> AsyncIterator[AsyncSession]:
        async with session.begin_nested():
            yield session

    return transaction
