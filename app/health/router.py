"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core.migrations import head_revision

router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "database": "ok",
                    "revision": "20261123_0006",
                    "expected_revision": "20261123_0006",
                }
            ]
        }
    )

    status: str
    database: str | None = None
    revision: str | None = None
    expected_revision: str | None = None


@router.get("/healthz", response_model=HealthStatus)
async def get_health() -> HealthStatus:
    """The process is alive."""
    return HealthStatus(status="ok")


@router.get("/readyz", response_model=HealthStatus, responses={503: {"model": HealthStatus}})
async def get_readiness(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration (503 once stopping)."""
    expected = head_revision()
    if getattr(request.app.state, "stopping", False):  # SIGTERM came: send no more requests
        body = HealthStatus(status="shutting_down", expected_revision=expected)
        return JSONResponse(body.model_dump(), status_code=503)
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            try:
                revision = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar()
            except DBAPIError:  # no alembic_version table: never migrated
                revision = None
    except (DBAPIError, OSError):
        body = HealthStatus(
            status="unavailable", database="unreachable", expected_revision=expected
        )
        return JSONResponse(body.model_dump(), status_code=503)
    ready = revision == expected
    body = HealthStatus(
        status="ok" if ready else "migrations_pending",
        database="ok",
        revision=revision,
        expected_revision=expected,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
