"""Fixtures: one migrated database per run, one rolled-back transaction per test."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.databases import BACKEND, fresh_database, joined_session, savepoint_transactions

TEST_SECRET = "test-signing-key-" + "x" * 32
TEST_PII_KEY = "test-pii-key-" + "y" * 32


def pytest_report_header() -> str:
    return f"fieldsync database backend: {BACKEND}"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep what is loaded by now (the app, the OpenAPI document, schemathesis's strategies) out
    of the garbage collector's passes, and collect less often: a test makes much short-lived
    garbage, and with the defaults a fifth of the suite's time went to full passes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


@pytest.fixture(scope="session", autouse=True)
def assembled() -> None:
    """The app's parts connected (the change log, the subscribers, the ports), as every entry
    point does before it opens a session."""
    from app.wiring import assemble

    assemble()


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fieldsync")


@pytest.fixture(scope="session")
def database_url(tmp_root: Path) -> Iterator[str]:
    """A fresh database of the selected backend, migrated to head with the real migrations."""
    from app.core import migrations
    from app.core.config import get_settings

    with fresh_database(tmp_root) as url:
        os.environ.update(
            FIELDSYNC_ENVIRONMENT="test",
            FIELDSYNC_DATA_DIR=str(tmp_root / "data"),
            FIELDSYNC_DATABASE_URL=url,
            FIELDSYNC_SECRET_KEY=TEST_SECRET,
            FIELDSYNC_PII_KEY=TEST_PII_KEY,
        )
        get_settings.cache_clear()
        migrations.upgrade(url)
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    from app.core.config import get_settings
    from app.core.db import make_engine

    engine = make_engine(get_settings(), url=database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test; the app's commits
    only release savepoints."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        session = joined_session(conn)
        try:
            yield session
        finally:
            await session.close()
            await trans.rollback()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


# The app's database dependencies, as the tests replace them: module-level functions that find
# the test's session on the app (FastAPI caches what it learns of a dependency per callable, so a
# closure made per test would keep every test's session and app alive).
async def _test_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Like a real request, each one runs in a transaction of its own (here: a savepoint): a
    # failing request rolls back only its own writes and expires only what it touched, never
    # what the test set up before.
    session: AsyncSession = request.app.state.test_session
    async with session.begin_nested():
        yield session


def _test_transactions(request: Request) -> Callable[..., Any]:
    # Routes that open their own short transactions (uploads) get savepoints too.
    return savepoint_transactions(request.app.state.test_session)


@pytest.fixture
def app(session: AsyncSession, engine: AsyncEngine, media_dir: Path):  # type: ignore[no-untyped-def]
    from app.core.db import get_session, get_transactions
    from app.main import create_app
    from app.photos.storage import LocalStorage

    application = create_app()
    application.state.engine = engine
    application.state.storage = LocalStorage(media_dir)
    application.state.test_session = session
    application.dependency_overrides[get_session] = _test_session
    application.dependency_overrides[get_transactions] = _test_transactions
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


# --- the little county every test may use -------------------------------------------------

from tests.builders import World, build_world  # noqa: E402


@pytest.fixture
async def world(session: AsyncSession) -> World:
    return await build_world(session)
