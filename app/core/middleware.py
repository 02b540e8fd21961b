"""Plain ASGI middleware (no per-request task): request ids and the access log; request bodies."""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import (
    AppError,
    InvalidBodyEncoding,
    PayloadTooLarge,
    UnsupportedContentEncoding,
    problem_response,
)
from app.core.i18n import Text
from app.core.logging import escaped

log = logging.getLogger("fieldsync.access")


# On every answer (pages replace the policy and framing with their own): no MIME sniffing, no
# framing, no referrer, and for the API's JSON no content of any kind may run or load.
SECURITY_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
)


class RequestContextMiddleware:
    """Give every request an id (X-Request-ID, echoed back) and log one line when it ends.

    The line holds method, path, status and duration: never the query string (it may hold
    names) nor the body (it may hold ID numbers).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope["headers"])
        incoming = request_headers.get(b"x-request-id", b"").decode("latin-1")
        # What a caller sees depends on who they are (masking, villages): shared caches must
        # not hand one caller's answer to another.
        personal = b"authorization" in request_headers
        request_id = escaped(incoming[:64]) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                headers.append("x-request-id", request_id)
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers.append(name, value)
                if personal and "cache-control" not in headers:
                    headers["cache-control"] = "private, no-cache"
                    headers.add_vary_header("Authorization")  # beside gzip's Accept-Encoding
                message = {**message, "headers": headers.raw}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s %.1fms rid=%s",
                escaped(scope["method"]),
                escaped(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


class RequestBodyMiddleware:
    """Decode gzip request bodies and refuse bodies over the limit of their path, as they stream.

    Phones on slow networks send `Content-Encoding: gzip`: the app downstream sees the inflated
    body, without the content-encoding and content-length headers. The limit (the default, or
    the override of the exact path, or else of the longest matching prefix) bounds both the
    bytes received and the bytes inflated, so a gzip bomb never inflates more than limit + 1
    bytes. A declared Content-Length above it is
    refused before anything is read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        path_limits: Mapping[str, int] | None = None,
        prefix_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})
        # Longest prefix first, so a more specific one wins.
        self.prefix_limits = sorted((prefix_limits or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_of(self, path: str) -> int:
        if path in self.path_limits:
            return self.path_limits[path]
        for prefix, limit in self.prefix_limits:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        # The 413 handler of errors.py reads it from there, like the request id.
        scope.setdefault("state", {})["max_body_bytes"] = limit
        declared = dict(scope["headers"]).get(b"content-length")
        # Several header lines mean several codings applied in turn: not accepted, like a list.
        coding = ", ".join(
            value.decode("latin-1").strip().lower()
            for name, value in scope["headers"]
            if name == b"content-encoding"
        )
        if coding not in _GZIP and coding not in _IDENTITY:
            await _refuse(UnsupportedContentEncoding.of(coding), scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(PayloadTooLarge(limit_bytes=limit), scope, receive, send)
            return
        if coding in _GZIP:
            # Downstream the body is the inflated one: its coding and declared length are gone.
            headers = [
                (name, value)
                for name, value in scope["headers"]
                if name not in (b"content-encoding", b"content-length")
            ]
            scope = {**scope, "headers": headers}
        reader = _BodyReader(receive, limit=limit, gzip=coding in _GZIP)
        started = False  # by the app, before the body turned out to be refused
        answered = False

        async def checked_send(message: Message) -> None:
            nonlocal started, answered
            if reader.error is None or started:
                started = started or message["type"] == "http.response.start"
                await send(message)
            elif not answered:
                # Whatever the app made of the refused body (FastAPI: a 400 "error parsing the
                # body"), the caller gets the problem with the body itself.
                answered = True
                await _refuse(reader.error, scope, receive, send)

        try:
            await self.app(scope, reader.receive, checked_send)
        except Exception:
            if reader.error is None or started:
                raise
        if reader.error is not None and not started and not answered:
            await _refuse(reader.error, scope, receive, send)


_GZIP = ("gzip", "x-gzip")
_IDENTITY = ("", "identity")
# Inflate gzip (RFC 1952) framing, not raw deflate or zlib.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


async def _refuse(error: AppError, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(error.problem(instance=scope["path"]), headers=error.headers)
    await response(scope, receive, send)


class _BodyReader:
    """The app's `receive`: counts (and inflates) the body, raising once it is refused."""

    def __init__(self, receive: Receive, *, limit: int, gzip: bool) -> None:
        self._receive = receive
        self._limit = limit
        self._inflater = zlib.decompressobj(_GZIP_WBITS) if gzip else None
        self._received = 0
        self._inflated = 0
        self.error: AppError | None = None

    async def receive(self) -> Message:
        if self.error is not None:
            raise self.error
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        try:
            body = self._read(message.get("body", b""), more=message.get("more_body", False))
        except AppError as error:
            self.error = error
            raise
        return {**message, "body": body}

    def _read(self, chunk: bytes, *, more: bool) -> bytes:
        self._received += len(chunk)
        if self._received > self._limit:
            raise PayloadTooLarge(limit_bytes=self._limit)
        if self._inflater is None:
            return chunk
        pieces = []
        data = chunk
        try:
            while data:
                if self._inflater.eof:  # a stream of several gzip members, as RFC 1952 allows
                    self._inflater = zlib.decompressobj(_GZIP_WBITS)
                # Never more than one byte past the limit: what a gzip bomb gets to inflate.
                piece = self._inflater.decompress(data, self._limit + 1 - self._inflated)
                self._inflated += len(piece)
                if self._inflated > self._limit:
                    raise PayloadTooLarge(limit_bytes=self._limit)
                pieces.append(piece)
                # Input is left unconsumed only when the output reached its maximum: past the
                # limit, refused above. Past the end of a member starts the next one.
                data = self._inflater.unused_data if self._inflater.eof else b""
        except zlib.error as exc:
            raise InvalidBodyEncoding(
                Text("the gzip request body is corrupt ({exc})", exc=exc)
            ) from None
        if not more and self._received and not self._inflater.eof:
            raise InvalidBodyEncoding(
                Text("the gzip request body ends before its gzip stream does")
            )
        return b"".join(pieces)
