"""Async engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings
from app.core.ports import NotAssembled

# Execution option a write transaction sets so that SQLite takes the write lock at BEGIN
# (BEGIN IMMEDIATE) and waits for it with the busy timeout, instead of failing with
# SQLITE_BUSY when a deferred read transaction later tries to upgrade to a write.
SQLITE_IMMEDIATE = "fieldsync_sqlite_immediate"


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    # The documented pysqlite/aiosqlite workaround: let SQLAlchemy, not the driver, emit
    # BEGIN, so that SAVEPOINT and transactional DDL behave.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(SQLITE_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(settings: Settings, *, url: str | None = None, **kwargs: Any) -> AsyncEngine:
    """Build the engine for the configured database, with SQLite's pragmas applied.

    Statement parameters are kept out of error messages: they hold ID numbers and phones, and
    error messages end up in logs.
    """
    url = url or settings.effective_database_url
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # A file database has no server connection that could go stale: no pre-ping round trip.
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def redacted_url(url: str) -> str:
    """The database URL without its password, for output and logs."""
    return make_url(url).render_as_string(hide_password=True)


# Set in `session.info` of a session whose commits only release savepoints (the tests' sessions
# joined to an outer transaction): what a commit ends (e.g. the audit log's notes of a request)
# ends when a savepoint right under the session's root is released.
SAVEPOINT_COMMITS = "fieldsync_savepoint_commits"


# Set where the app is assembled (`app.wiring`), once the session events and subscribers that
# every write relies on are installed.
_assembled: list[bool] = []


def mark_assembled() -> None:
    _assembled[:] = [True]


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # A session of an app not assembled would write without the sync change log and the
    # subscribers of its events: refuse rather than lose them.
    if not _assembled:
        raise NotAssembled("the app is not assembled: call app.wiring.assemble() first")
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def gather_statistics(engine: AsyncEngine) -> bool:
    """ANALYZE the whole database on PostgreSQL; True if it did.

    Run after migrations and bulk loads: a freshly migrated, restored or loaded database has no
    planner statistics until autovacuum gets to it, and autovacuum may be late or off (it is
    off on the CI machines). SQLite plans the app's queries from its indexes alone: nothing to
    do there.
    """
    if engine.dialect.name != "postgresql":
        return False
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("ANALYZE"))
    return True


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@asynccontextmanager
async def transaction(
    state: Any, *, writing: bool, info: dict[str, Any] | None = None
) -> AsyncIterator[AsyncSession]:
    """A session in a transaction of its own: committed at the end, rolled back on error.

    `info` starts the session's `info` (what a request knows of itself, see `request_info`).

    PostgreSQL writers run in parallel; row locks order the ones that touch the same rows, and
    a deadlock or serialisation failure answers 503 `busy`, retryable (every write is
    idempotent). SQLite has one writer at a time: a `writing` transaction takes the write lock
    at BEGIN IMMEDIATE (a read transaction cannot upgrade to a write once another writer has
    committed). Writing transactions of this process also queue, first come first served, on
    one asyncio lock held until commit: SQLite's busy handler polls and is not fair, so under a
    steady stream of batches a waiting write could otherwise starve past the busy timeout. The
    busy timeout still orders this process against others (CLI, further workers).
    """
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(sessionmaker())
        session.info.update(info or {})
        if writing and session.get_bind().dialect.name == "sqlite":
            await stack.enter_async_context(_sqlite_write_lock(state))
            await session.connection(execution_options={SQLITE_IMMEDIATE: True})
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; committed before the response is sent, rolled back on error.

    Used with ``Depends(scope="function")`` so the commit happens when the route returns, before
    FastAPI sends the response: a commit that fails becomes an error response, never a lost
    write behind a 200. A request with an unsafe method writes: it holds the write lock.
    """
    async with transaction(request.app.state, writing=request.method not in _SAFE_METHODS) as s:
        yield s


class Transactions(Protocol):
    """Opens short transactions on demand (`writing=True`: one that writes)."""

    def __call__(self, *, writing: bool) -> AbstractAsyncContextManager[AsyncSession]: ...


def get_transactions(request: Request) -> Transactions:
    """For routes that must not hold a transaction while they wait on the network (uploads):
    they open short ones as they need them, each starting with the request's `request_info`."""
    return partial(transaction, request.app.state, info=request_info(request))


def request_info(request: Request) -> dict[str, Any]:
    """What the sessions a request opens by `get_transactions` start their `info` with, as it
    stands when each opens (e.g. who is calling, noted once the token is checked)."""
    info: dict[str, Any] | None = getattr(request.state, "session_info", None)
    if info is None:
        info = request.state.session_info = {}
    return info


def _sqlite_write_lock(state: Any) -> asyncio.Lock:
    lock: asyncio.Lock | None = getattr(state, "sqlite_write_lock", None)
    if lock is None:
        lock = state.sqlite_write_lock = asyncio.Lock()
    return lock


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
TransactionsDep = Annotated[Transactions, Depends(get_transactions)]
