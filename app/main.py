"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.gzip import GZipMiddleware

from app.api import api_router
from app.core.config import get_settings
from app.core.db import make_engine, make_sessionmaker
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestBodyMiddleware, RequestContextMiddleware
from app.core.openapi import install_openapi
from app.health.router import router as health_router

DESCRIPTION = """\
Backend of the fieldsync phone app for targeted poverty alleviation (精准扶贫) and the monitoring
that keeps households from falling back into poverty (防止返贫动态监测).

* Lists answer `{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as `cursor`.
* Errors are RFC 9457 problem documents (`application/problem+json`) with a stable `code` and a
  `retryable` flag; the token endpoints answer in RFC 6749 form.
* ID numbers and phone numbers are masked unless the caller may see them (`pii:read`).
"""

TAGS = [
    {"name": "auth", "description": "OAuth 2.0 tokens, revocation and the caller."},
    {
        "name": "regions",
        "description": "Administrative divisions: county, town, village, natural village.",
    },
    {"name": "households", "description": "Registered households (建档立卡户) and their members."},
    {
        "name": "records",
        "description": "Field records from the phone: visits, income snapshots, support measures.",
    },
    {"name": "thresholds", "description": "Poverty lines and monitoring thresholds by year."},
    {"name": "sync", "description": "Offline sync: batches up, changes down, status, conflicts."},
    {"name": "devices", "description": "Phones registered at login; revoke a lost one."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def _operation_id(route: APIRoute) -> str:
    """operationId = the route function's name (verb_noun): stable and readable in clients."""
    return route.name


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = get_settings()
        configure_logging(settings.log_level)  # in every worker process, too
        # Fail at start-up, not at the first login, when production runs without its keys.
        settings.signing_key  # noqa: B018
        settings.pii_hash_key  # noqa: B018
        if not hasattr(app.state, "engine"):
            app.state.engine = make_engine(settings)
            app.state.sessionmaker = make_sessionmaker(app.state.engine)
            owns_engine = True
        else:
            owns_engine = False
        try:
            yield
        finally:
            if owns_engine:
                await app.state.engine.dispose()

    app = FastAPI(
        title="fieldsync",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        separate_input_output_schemas=True,
    )
    install_error_handlers(app)

    # The last one added is the outermost: request ids and the access log see every response,
    # compressed or not; bodies are decoded and bounded before anything reads them.
    settings = get_settings()
    app.add_middleware(
        RequestBodyMiddleware,
        max_bytes=settings.max_body_bytes,
        path_limits={"/api/v1/sync/batches": settings.sync_max_body_bytes},
    )
    # Level 6 (zlib's default) gives nearly all of 9's saving on JSON for far less CPU.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    app.include_router(api_router)
    install_openapi(app)
    return app
