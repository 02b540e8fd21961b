"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from app.api import api_router
from app.core.config import get_settings
from app.core.db import make_engine, make_sessionmaker
from app.core.errors import install_error_handlers
from app.core.i18n import LanguageMiddleware, load_catalogs
from app.core.logging import configure_logging
from app.core.middleware import RequestBodyMiddleware, RequestContextMiddleware
from app.core.ratelimit import RateLimitMiddleware, RateLimits, install_rate_limit_docs
from app.core.server import draining_on_sigterm
from app.exports.xlsx import XLSX_MEDIA_TYPE
from app.health.router import router as health_router
from app.openapi import install_openapi
from app.photos.cleanup import expire_uploads_periodically
from app.photos.storage import make_storage
from app.photos.tus import TusMiddleware
from app.users.models import Role
from app.web.router import install_web_app
from app.webhooks.delivery import deliver_in_background
from app.wiring import assemble

DESCRIPTION = """\
Backend of the fieldsync phone app for targeted poverty alleviation (精准扶贫) and the monitoring
that keeps households from falling back into poverty (防止返贫动态监测).

* Lists answer `{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as `cursor`.
* Errors are RFC 9457 problem documents (`application/problem+json`) with a stable `code` and a
  `retryable` flag; the token endpoints answer in RFC 6749 form.
* Texts for people (problem `title`, `detail` and field `message`s; the `detail` of risk flags,
  exit and clearing reasons and data-quality issues) are in Chinese with `Accept-Language:
  zh-CN` (or `zh`), in English otherwise; such responses carry `Content-Language` and
  `Vary: Accept-Language`. Codes, `type` URIs and field paths never change with the language.
* ID numbers and phone numbers are masked, and exact positions (visits, photos) coarsened to
  0.01°, unless the caller may see them (`pii:read`).
"""

TAGS = [
    {"name": "auth", "description": "OAuth 2.0 tokens, revocation and the caller."},
    {
        "name": "regions",
        "description": "Administrative divisions: county, town, village, natural village.",
    },
    {
        "name": "households",
        "description": "Households, registered (建档立卡户) or ordinary (一般农户), and their "
        "members.",
    },
    {
        "name": "records",
        "description": "Field records from the phone: visits, income snapshots, support measures.",
    },
    {
        "name": "monitoring",
        "description": "Monitoring against falling (back) into poverty (防止返贫致贫监测): cases "
        "of monitoring objects with their review and clearing steps, department alerts.",
    },
    {"name": "thresholds", "description": "Poverty lines and monitoring thresholds by year."},
    {"name": "sync", "description": "Offline sync: batches up, changes down, status, conflicts."},
    {"name": "devices", "description": "Phones registered at login; revoke a lost one."},
    {
        "name": "users",
        "description": "The accounts of a county (officers, first secretaries, town staff, county "
        "admins), administered by its county admins: create, disable, regions, passwords.",
    },
    {
        "name": "clients",
        "description": "Third-party apps (API clients) a county admin registers: read-only, "
        "one region, the scopes granted, tokens by client_credentials.",
    },
    {
        "name": "uploads",
        "description": "Resumable photo uploads over bad networks: the tus 1.0.0 protocol "
        "(https://tus.io/protocols/resumable-upload) with the creation, creation-with-upload, "
        "termination, checksum and expiration extensions. Standard tus clients work unchanged.",
    },
    {
        "name": "photos",
        "description": "Photos stored by sha256: metadata, content (with Range), thumbnails, "
        "a household's photos and a measure's before/after evidence.",
    },
    {
        "name": "progress",
        "description": "Each household's before and after, each region's standing (精准扶贫 "
        "progress and 防返贫 monitoring flags).",
    },
    {
        "name": "quality",
        "description": "Data cleaning (数据清洗): records that cannot be trusted yet.",
    },
    {
        "name": "exports",
        "description": "A region's households with their progress and monitoring cases, as CSV "
        "or Excel, streamed.",
    },
    {
        "name": "webhooks",
        "description": "Events pushed to third parties as they happen: signed, at least once, "
        "in order per household, retried for a day; with a delivery log.",
    },
    {
        "name": "audit",
        "description": "The audit log (审计日志): every write and sign-in, who, from which device, "
        "when and what changed (personal data masked), each entry hash-chained to the one before "
        "(`fieldsync audit verify`).",
    },
    {
        "name": "vocabulary",
        "description": "Every code of the contract with its Chinese label, for apps to show.",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
]


# What a browser client (tus-js-client, a dashboard) may send and read across origins.
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "If-Match",
    "If-None-Match",
    "Range",
    "X-Request-ID",
    "X-HTTP-Method-Override",
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
    "Upload-Checksum",
    "Upload-Defer-Length",
    "Upload-Concat",
]
CORS_RESPONSE_HEADERS = [
    "Location",
    "ETag",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "Content-Range",
    "X-Request-ID",
    "Idempotent-Replay",
    "Record-Outcome",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Upload-Defer-Length",
]


def _operation_id(route: APIRoute) -> str:
    """operationId = the route function's name (verb_noun): stable and readable in clients."""
    return route.name


def create_app() -> FastAPI:
    assemble()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = get_settings()
        configure_logging(settings.log_level)  # in every worker process, too
        # Fail at start-up, not at the first login, when production runs without its keys.
        settings.signing_key  # noqa: B018
        settings.pii_hash_key  # noqa: B018
        async with AsyncExitStack() as stack:
            # SIGTERM: /readyz answers 503 from that moment (uvicorn drains, then stops).
            app.state.stopping = False
            stack.enter_context(
                draining_on_sigterm(
                    partial(setattr, app.state, "stopping", True),
                    delay=settings.shutdown_drain_seconds,
                )
            )
            if not hasattr(app.state, "engine"):
                app.state.engine = make_engine(settings)
                app.state.sessionmaker = make_sessionmaker(app.state.engine)
                stack.push_async_callback(app.state.engine.dispose)
            if not hasattr(app.state, "storage"):
                app.state.storage = make_storage(settings)
                stack.push_async_callback(app.state.storage.close)
            stack.push_async_callback(app.state.rate_limits.close)
            if settings.upload_cleanup_interval_seconds:
                await stack.enter_async_context(expire_uploads_periodically(app.state, settings))
            if settings.webhook_worker_enabled:
                await stack.enter_async_context(deliver_in_background(app.state, settings))
            yield

    # /docs and /redoc with their scripts shipped in the package: they work with no internet.
    app = FastAPIOffline(
        title="fieldsync",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        separate_input_output_schemas=True,
    )
    install_error_handlers(app)
    # Each package's translations (app/<package>/<language>.po): core holds no domain words.
    load_catalogs(Path(__file__).parent)

    # The last one added is the outermost: request ids and the access log see every response,
    # compressed or not; bodies are decoded and bounded before anything reads them.
    settings = get_settings()
    # Innermost: it reads the token endpoint's form once the body middleware has bounded it,
    # and its 429s get request ids, CORS headers and the access log like any answer.
    app.state.rate_limits = RateLimits(settings, client_role=Role.api_client.value)
    app.add_middleware(RateLimitMiddleware)
    app.add_middleware(
        RequestBodyMiddleware,
        max_bytes=settings.max_body_bytes,
        path_limits={
            "/api/v1/sync/batches": settings.sync_max_body_bytes,
            "/api/v1/uploads": settings.upload_max_bytes,  # creation-with-upload
            # The file, and room for the multipart framing around it.
            "/api/v1/monitoring/alerts/import": settings.alert_import_max_bytes + 65536,
            "/api/v1/households/imports": settings.household_import_max_bytes + 65536,
            # The web app's forms that pass the same files on to them.
            "/monitoring/alerts/import": settings.alert_import_max_bytes + 65536,
            "/admin/import": settings.household_import_max_bytes + 65536,
        },
        prefix_limits={
            "/api/v1/uploads/": settings.upload_max_bytes,
            "/api/v1/photos/": settings.upload_max_bytes,
        },
    )
    # tus framing around the body limit, so that its 413 says Tus-Resumable too.
    app.add_middleware(TusMiddleware, prefix="/api/v1/uploads")
    # Level 6 (zlib's default) gives nearly all of 9's saving on JSON for far less CPU.
    # Photos are compressed already (and a gzipped byte range would be wrong).
    app.add_middleware(
        GZipMiddleware,
        minimum_size=1024,
        compresslevel=6,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "image/*", XLSX_MEDIA_TYPE),
    )
    # Each request's language (Accept-Language), for every text rendered inside, problem
    # documents of the middlewares above included.
    app.add_middleware(LanguageMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # Outermost: browser preflights are answered before anything else, and every response,
    # errors included, carries the CORS headers. Bearer tokens, not cookies: no credentials.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_RESPONSE_HEADERS,
        max_age=86400,
    )
    app.include_router(health_router)
    app.include_router(api_router)
    install_web_app(app)
    install_openapi(app)
    install_rate_limit_docs(app)
    return app
