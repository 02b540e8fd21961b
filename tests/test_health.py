"""Liveness and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import migrations
from app.core.config import get_settings
from app.core.db import make_engine
from tests.databases import fresh_database


async def test_healthz_answers_without_a_token(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_reports_the_schema_at_head(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["database"] == "ok"
    assert body["revision"] == migrations.head_revision() == body["expected_revision"]


@pytest.fixture
def empty_database(tmp_path: Path, database_url: str) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
async def empty_engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(get_settings(), url=empty_database)
    yield engine
    await engine.dispose()


async def test_readyz_is_503_before_migrations(app, client, empty_engine: AsyncEngine) -> None:  # type: ignore[no-untyped-def]
    app.state.engine = empty_engine
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "migrations_pending"
    assert response.json()["database"] == "ok"
    assert response.json()["revision"] is None


async def test_readyz_is_503_when_the_database_is_unreachable(app, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    unreachable = make_engine(
        get_settings(), url=f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/db.sqlite"
    )
    app.state.engine = unreachable
    try:
        response = await client.get("/readyz")
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "revision": None,
        "expected_revision": migrations.head_revision(),
    }


async def test_readyz_is_503_once_the_server_is_stopping(app, client) -> None:  # type: ignore[no-untyped-def]
    app.state.stopping = True  # what SIGTERM sets (app/core/server.py, draining_on_sigterm)
    try:
        response = await client.get("/readyz")
        alive = await client.get("/healthz")
    finally:
        app.state.stopping = False
    assert response.status_code == 503
    assert response.json()["status"] == "shutting_down"
    assert alive.status_code == 200  # alive all the same: no restart wanted
