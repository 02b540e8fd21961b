"""Problem documents everywhere, and nothing personal in the logs."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from app.core.logging import configure_logging
from tests.assertions import problem
from tests.builders import ID_HEAD_A1, World


async def test_unknown_route_is_a_problem_document(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_wrong_method_is_a_problem_document(client, world: World) -> None:  # type: ignore[no-untyped-def]
    response = await client.delete("/api/v1/regions", headers=world.headers("admin_a"))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"


async def test_unexpected_error_is_500_with_request_id_and_no_details(  # type: ignore[no-untyped-def]
    app, client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail that must not reach the client")

    response = await client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error" and body["retryable"] is True
    assert body["request_id"] == "req-123" == response.headers["X-Request-ID"]
    assert "internal detail" not in response.text
    assert any("req-123" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


class DeadlockDetectedError(Exception):
    """Named as asyncpg names PostgreSQL's 40P01."""


@pytest.mark.parametrize(
    "cause",
    [sqlite3.OperationalError("database is locked"), DeadlockDetectedError("deadlock detected")],
    ids=["sqlite-locked", "postgresql-deadlock"],
)
async def test_database_contention_is_503_retryable(app, client, cause: Exception) -> None:  # type: ignore[no-untyped-def]
    """A busy database is the phone's cue to retry (the batch is idempotent), not a fault."""

    @app.post("/busy")
    async def busy() -> None:
        raise OperationalError("COMMIT", {}, cause)

    response = await client.post("/busy")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert (body["code"], body["retryable"]) == ("busy", True)


@pytest.fixture
def restore_root_level():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


async def test_id_numbers_never_reach_the_logs(  # type: ignore[no-untyped-def]
    client, world: World, caplog: pytest.LogCaptureFixture, restore_root_level
) -> None:
    configure_logging("DEBUG")  # as `fieldsync serve` would with FIELDSYNC_LOG_LEVEL=DEBUG
    caplog.set_level(logging.DEBUG)
    headers = world.headers("admin_a")
    await client.post("/api/v1/households/search", json={"id_number": ID_HEAD_A1}, headers=headers)
    await client.get("/api/v1/households", params={"q": "张建国"}, headers=headers)
    await client.post(
        "/api/v1/households",
        json={"number": "x", "members": [{"id_number": ID_HEAD_A1}]},
        headers=headers,
    )
    # The test client's own request log (httpx) is not the server's.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "/api/v1/households/search" in logged  # the access log did run
    assert ID_HEAD_A1 not in logged and "张建国" not in logged


async def test_a_body_that_is_not_utf8_is_invalid_json(client, world: World) -> None:  # type: ignore[no-untyped-def]
    """Found by the OpenAPI fuzzer: FastAPI answered an undocumented 400."""
    response = await client.post(
        "/api/v1/households/search",
        content=b'{"id_number": "\xff"}',
        headers={**world.headers("officer_a1"), "Content-Type": "application/json"},
    )
    problem(response, 422, "validation_failed", field="body")
    assert response.json()["errors"][0]["type"] == "json_invalid"
