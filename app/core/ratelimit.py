"""Rate limits: 429 with Retry-After, counted in this process or in a Redis all instances share.

Who is counted: an API client or a user by the subject of their verified access token (no
database access: an invalid token passes on to the normal 401), and the token endpoint by client
address and by the username or client_id it names (a guard against password guessing). Counting
is a moving window (the `limits` library), exact across instances when they share Redis.

When Redis does not answer, requests pass unlimited (fail-open, logged): an outage of the counter
store must not become an outage of the API. It is tried again every few seconds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI
from jose import jwt
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, AppError, problem_response
from app.core.i18n import Text
from app.core.security import InvalidToken, decode_access_token

log = logging.getLogger("fieldsync.ratelimit")

API_PREFIX = "/api/v1/"
TOKEN_PATH = "/api/v1/auth/token"
# After the store failed, requests pass unlimited this long before it is tried again.
OUTAGE_PAUSE_SECONDS = 5.0
# A Redis that does not answer within this delays a request by no more (then the pause).
REDIS_TIMEOUT_SECONDS = 1.0
# Verified tokens remembered (token → caller), so that each is verified once, not per request.
TOKEN_CACHE_SIZE = 4096


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"
    retryable = True


@dataclass(frozen=True)
class Policy:
    """One limit of one kind of caller: `name` in the RateLimit headers, `kind` in the keys."""

    kind: str
    name: str
    item: RateLimitItem

    @property
    def header(self) -> str:
        """Its entry in RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers)."""
        return f'"{self.name}";q={self.item.amount};w={self.item.get_expiry()}'


def policies(kind: str, spec: str) -> tuple[Policy, ...]:
    """The limits of a setting ("600/minute", "10/second;600/minute"; empty: none)."""
    items = parse_many(spec) if spec.strip() else []
    if len(items) == 1:
        return (Policy(kind, kind, items[0]),)
    return tuple(Policy(kind, f"{kind}-{item.get_expiry()}s", item) for item in items)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]


@dataclass(frozen=True)
class _Caller:
    kind: str  # "client" or "user"
    subject: str
    expires_at: float


class RateLimits:
    """The limits of one API process, over its counter store (created once, with the app)."""

    def __init__(self, settings: Settings, *, client_role: str) -> None:
        """`client_role`: the token role of third-party clients, counted by their own policies."""
        self.settings = settings
        self.client_role = client_role
        self.enabled = settings.rate_limit_enabled
        self.by_kind = {
            "client": policies("client", settings.rate_limit_client),
            "user": policies("user", settings.rate_limit_user),
        }
        self.token_ip = policies("ip", settings.rate_limit_token_ip)
        self.login = policies("login", settings.rate_limit_login)
        self.id_search = policies("id-search", settings.rate_limit_id_search)
        self._close: Callable[[], Awaitable[None]] | None = None
        self.storage = self._make_storage(settings) if self.enabled else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._paused_until = 0.0
        self._failing = False
        self._callers: dict[str, _Caller] = {}

    def _make_storage(self, settings: Settings) -> Storage:
        uri = settings.rate_limit_storage_uri
        if uri.split("://", 1)[0].lower() == "memory":
            return MemoryStorage()
        from redis.asyncio import ConnectionPool

        # Our own pool: its timeouts bound what a stalled Redis costs a request (and it has no
        # retries with backoff), and closing it at shutdown closes the connections.
        pool = ConnectionPool.from_url(
            uri,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._close = pool.aclose
        return RedisStorage(
            f"async+{uri}",
            implementation="redispy",
            key_prefix=settings.rate_limit_key_prefix,
            wrap_exceptions=True,
            connection_pool=pool,  # type: ignore[arg-type]  # passed on to redis-py
        )

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    # --- who is calling ----------------------------------------------------------------

    def caller(self, token: str) -> tuple[str, str] | None:
        """(kind, subject) of a valid access token; None for an invalid one (the app says 401)."""
        now = time.time()
        known = self._callers.get(token)
        if known is not None and known.expires_at > now:
            return known.kind, known.subject
        try:
            claims = decode_access_token(self.settings, token)
        except InvalidToken:
            return None
        # A client's tokens name its service account (every token of the client the same one)
        # and the role: verified just above.
        role = jwt.get_unverified_claims(token).get("role")
        kind = "client" if role == self.client_role else "user"
        caller = _Caller(kind, str(claims.user_id), claims.expires_at.timestamp())
        if len(self._callers) >= TOKEN_CACHE_SIZE:
            self._callers.clear()
        self._callers[token] = caller
        return caller.kind, caller.subject

    # --- counting ------------------------------------------------------------------------

    async def hit(self, checks: Sequence[tuple[Policy, str]]) -> Verdict | None:
        """Count one request against each (policy, identity); None: nothing to count, or the
        store is failing (then the request passes)."""
        if not checks or time.monotonic() < self._paused_until:
            return None
        try:
            refused: tuple[Policy, str] | None = None
            for policy, identity in checks:
                if not await self.limiter.hit(policy.item, policy.kind, identity):
                    refused = (policy, identity)
                    break
            # Report the refused limit, or else the one closest to refusing.
            shown = [refused] if refused else checks
            stats = [
                (policy, await self.limiter.get_window_stats(policy.item, policy.kind, identity))
                for policy, identity in shown
            ]
        except (StorageError, OSError) as exc:
            self._paused_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
            if not self._failing:
                self._failing = True
                log.warning(
                    "rate-limit store %s does not answer (%s): requests pass unlimited until "
                    "it does (tried again every %.0f s)",
                    _redacted(self.settings.rate_limit_storage_uri),
                    exc,
                    OUTAGE_PAUSE_SECONDS,
                )
            return None
        if self._failing:
            self._failing = False
            log.info("rate-limit store answers again: requests are limited again")
        policy, (reset_time, remaining) = min(stats, key=lambda entry: entry[1].remaining)
        reset_in = max(1, math.ceil(reset_time - time.time()))
        headers = {
            "RateLimit-Policy": ", ".join(p.header for p, _ in checks),
            "RateLimit": f'"{policy.name}";r={max(0, remaining)};t={reset_in}',
        }
        if refused:
            headers["Retry-After"] = str(reset_in)
        return Verdict(allowed=refused is None, headers=headers)

    async def limit_id_search(self, subject: str) -> None:
        """Count a search by ID number of a caller who may not see ID numbers (by their token's
        subject); RateLimited when over the limit. Called by the route, which knows the scopes."""
        if not self.enabled:
            return
        verdict = await self.hit([(policy, subject) for policy in self.id_search])
        if verdict is not None and not verdict.allowed:
            raise RateLimited(
                Text(
                    "too many searches by ID number without pii:read: retry in {seconds} s",
                    seconds=verdict.headers["Retry-After"],
                ),
                headers=verdict.headers,
            )

    async def check_request(self, scope: Scope, receive: Receive) -> tuple[Verdict | None, Receive]:
        """Count the request if a limit applies to it; the `receive` the app must read from."""
        if scope["path"] == TOKEN_PATH and scope["method"] == "POST":
            if not self.login:
                return await self.hit(self._address_checks(scope)), receive
            # The form is read here to name the login: the route reads it again from memory.
            replay = await _Replay.buffer(receive)
            return await self._check_token_request(scope, replay), replay
        if not scope["path"].startswith(API_PREFIX) or not any(self.by_kind.values()):
            return None, receive  # nothing to count: spare the token's verification
        token = _bearer_token(scope)
        caller = self.caller(token) if token else None
        if caller is None:
            return None, receive
        kind, subject = caller
        return await self.hit([(policy, subject) for policy in self.by_kind[kind]]), receive

    def _address_checks(self, scope: Scope) -> list[tuple[Policy, str]]:
        return [(policy, _client_address(scope)) for policy in self.token_ip]

    async def _check_token_request(self, scope: Scope, replay: _Replay) -> Verdict | None:
        checks = self._address_checks(scope)
        if self.login and replay.first["type"] == "http.request":  # else the client went away
            identity = await _login_identity(scope, replay.again())
            if identity is not None:
                # Hashed: any characters, any length, and no usernames in the store.
                digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
                checks += [(policy, digest) for policy in self.login]
        return await self.hit(checks)


class RateLimitMiddleware:
    """Answer 429 problem documents to callers over their limits, before the route runs.

    The limits are the application's `state.rate_limits` (like its engine: made once per
    process). Allowed requests that were counted get the RateLimit-Policy and RateLimit headers
    of draft-ietf-httpapi-ratelimit-headers; a 429 also gets Retry-After (seconds).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits: RateLimits | None = None
        if scope["type"] == "http":
            limits = getattr(scope["app"].state, "rate_limits", None)
        if limits is None or not limits.enabled:
            await self.app(scope, receive, send)
            return
        verdict, receive = await limits.check_request(scope, receive)
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            error = RateLimited(
                Text(
                    "too many requests: retry in {seconds} s",
                    seconds=verdict.headers["Retry-After"],
                ),
                headers=verdict.headers,
            )
            response = problem_response(error.problem(instance=scope["path"]), error.headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                for name, value in verdict.headers.items():
                    headers[name] = value
                message = {**message, "headers": headers.raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _client_address(scope: Scope) -> str:
    # Behind a reverse proxy: uvicorn takes it from X-Forwarded-For when the proxy is trusted
    # (FORWARDED_ALLOW_IPS).
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class _Replay:
    """A `receive` whose body was read into memory first: each reader (`again`) gets the whole
    body as one message, then the real `receive` (a disconnect).

    Only for the token endpoint, whose body is small and bounded by the body middleware
    outside this one.
    """

    def __init__(self, first: Message, receive: Receive) -> None:
        self.first = first
        self.receive = receive
        self.given = False

    @classmethod
    async def buffer(cls, receive: Receive) -> _Replay:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return cls(message, receive)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = b"".join(chunks)
                return cls({"type": "http.request", "body": body, "more_body": False}, receive)

    def again(self) -> _Replay:
        return _Replay(self.first, self.receive)

    async def __call__(self) -> Message:
        if not self.given:
            self.given = True
            return self.first
        return await self.receive()


async def _login_identity(scope: Scope, receive: Receive) -> str | None:
    """The username (password grant) or client_id (client_credentials: form or HTTP Basic)
    the token request names, read from a copy of its form; None when it names none."""
    request = Request(scope, receive)
    try:
        form = await request.form()
    except (MultiPartException, HTTPException, ValueError, UnicodeDecodeError):
        # Starlette turns a bad multipart body (no boundary …) into an HTTPException inside an
        # app. Here it only means the form names nobody: the route answers the bad form.
        return None
    try:
        grant_type = form.get("grant_type")
        if grant_type == "password":
            username = form.get("username")
            return f"user:{username}" if isinstance(username, str) and username else None
        if grant_type == "client_credentials":
            client_id = form.get("client_id") or _basic_client_id(request.headers)
            if not isinstance(client_id, str) or not client_id:
                return None
            with contextlib.suppress(ValueError):  # every spelling of one UUID: one client
                client_id = str(uuid.UUID(client_id))
            return f"client:{client_id}"
        return None
    finally:
        await form.close()


def _basic_client_id(headers: Any) -> str | None:
    """The client_id of `Authorization: Basic` (RFC 6749 §2.3.1: form-urlencoded, then base64)."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, _ = decoded.partition(":")
    return unquote_plus(client_id) or None


def _redacted(uri: str) -> str:
    """The store's URI without its password, for the log."""
    scheme, sep, rest = uri.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if at and credentials else uri


# --- the OpenAPI document ----------------------------------------------------------------

_RATE_LIMITED = {
    "description": "Too many requests: the caller (or, at the token endpoint, the address or "
    "the login named) is over its rate limit; retry after `Retry-After` seconds",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before sending the request again",
            "schema": {"type": "integer", "minimum": 1},
        },
        "RateLimit-Policy": {
            "description": 'The limits that apply, e.g. `"client";q=600;w=60` (600 requests '
            "per 60 seconds), as in draft-ietf-httpapi-ratelimit-headers",
            "schema": {"type": "string"},
        },
        "RateLimit": {
            "description": 'The limit reached and when it frees up, e.g. `"client";r=0;t=12`',
            "schema": {"type": "string"},
        },
    },
    "content": {
        PROBLEM_MEDIA_TYPE: {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": {
                "type": f"{PROBLEM_BASE}rate-limited",
                "title": "Too many requests",
                "status": 429,
                "detail": "too many requests: retry in 12 s",
                "instance": "/api/v1/households",
                "code": "rate_limited",
                "retryable": True,
            },
        }
    },
}


def install_rate_limit_docs(app: FastAPI) -> None:
    """Document the 429 on each operation a rate limit may refuse: every authenticated API
    operation and the token endpoint (whatever the settings: the contract does not change)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                token = path == TOKEN_PATH and method == "post"
                if token or (path.startswith(API_PREFIX) and operation.get("security")):
                    operation["responses"].setdefault("429", _RATE_LIMITED)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
