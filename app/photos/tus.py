"""The tus protocol's framing, for every response under the uploads path (errors included)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response
from app.core.i18n import Text
from app.photos.errors import TusVersionUnsupported
from app.photos.uploads import TUS_VERSION

# Browsers and some proxies cannot send PATCH or DELETE: tus lets them POST with this header.
_OVERRIDABLE = frozenset({"PATCH", "DELETE", "HEAD"})


class TusMiddleware:
    """Under `prefix`: honour X-HTTP-Method-Override, refuse other tus versions with 412, and
    put `Tus-Resumable` on every response, the body middleware's 413 and auth's 401 too."""

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == self.prefix or path.startswith(self.prefix + "/")
        ):
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope["headers"]}
        override = headers.get(b"x-http-method-override", b"").decode("latin-1").upper()
        if scope["method"] == "POST" and override in _OVERRIDABLE:
            scope = {**scope, "method": override}

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(raw=list(message.get("headers", [])))
                response_headers["tus-resumable"] = TUS_VERSION
                message = {**message, "headers": response_headers.raw}
            await send(message)

        version = headers.get(b"tus-resumable", b"").decode("latin-1").strip()
        if scope["method"] != "OPTIONS" and version != TUS_VERSION:
            error = TusVersionUnsupported(
                Text(
                    "this server speaks tus {tus_version}; the request says {value} "
                    "(send Tus-Resumable: {tus_version})",
                    tus_version=TUS_VERSION,
                    value=version or "nothing",
                ),
                headers={"Tus-Version": TUS_VERSION},
            )
            response = problem_response(error.problem(instance=path), headers=error.headers)
            await response(scope, receive, send_with_version)
            return
        await self.app(scope, receive, send_with_version)
