"""Request ids and the access log, as plain ASGI middleware (no per-request task or copy)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("fieldsync.access")


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
        request_id = incoming[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                if personal and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"private, no-cache"))
                    headers.append((b"vary", b"Authorization"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s %.1fms rid=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than `max_bytes` with 413, before they are read whole.

    A declared Content-Length is checked up front; a body without one (chunked) is counted as it
    streams in, and reading stops as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(
            status_code=413, detail=f"request body larger than the limit of {self.max_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = self._too_large()
            response = JSONResponse(
                {
                    "type": "https://fieldsync.example/problems/payload-too-large",
                    "title": "Payload too large",
                    "status": 413,
                    "detail": error.detail,
                    "code": "payload_too_large",
                    "retryable": False,
                    "limit_bytes": self.max_bytes,
                },
                status_code=413,
                media_type="application/problem+json",
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counting_receive, send)
