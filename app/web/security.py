"""What keeps the pages safe in a browser: a strict Content-Security-Policy and CSRF checks.

CSRF: every change is a POST that must come from the app's own pages. The Origin (or, failing
that, the Referer) must name this server, and a signed-in change must carry the session's own
CSRF token in `X-CSRF-Token` (the pages send it; another site cannot read it). We check this
ourselves rather than with starlette-csrf: that middleware sets its cookie on every answer,
API answers included, and its token is not bound to the sign-in.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.client import ApiError
from app.web.session import read_session

# No inline script, no eval, nothing from another host. Inline *styles* stay allowed: ECharts
# writes its tooltips as HTML with style attributes.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Swagger UI and ReDoc start with an inline script (FastAPI's pages) and ReDoc runs a worker
# from a blob; they may still reach nothing but this server (ReDoc's footer logo would).
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class PageHeadersMiddleware:
    """The policy on every page and asset of the app and the docs (not on the API itself)."""

    def __init__(
        self, app: ASGIApp, *, api_prefixes: tuple[str, ...], docs_prefixes: tuple[str, ...]
    ) -> None:
        self.app = app
        self.api_prefixes = api_prefixes
        self.docs_prefixes = docs_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not path or path.startswith(self.api_prefixes):
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if path.startswith(self.docs_prefixes) else CONTENT_SECURITY_POLICY
        added = {"content-security-policy": policy, **COMMON_HEADERS}

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    headers[name] = value  # the page's own, over the API's defaults
            await send(message)

        await self.app(scope, receive, send_with_policy)


class CrossSiteRequest(ApiError):
    """A change not sent by the app's own page: refused before anything is read."""

    def __init__(self, message: str) -> None:
        self.status = 403
        self.problem = {"detail": message, "code": "csrf_failed"}
        Exception.__init__(self, message)


def _same_origin(request: Request) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == (request.headers.get("host") or "").lower()


def check_origin(request: Request) -> None:
    """Refuse a change sent from another site's page (login included)."""
    if not _same_origin(request):
        raise CrossSiteRequest("请求来自其他网站，已拒绝。请在本系统页面内操作。")


def check_csrf(request: Request) -> None:
    """Refuse a signed-in change without the session's CSRF token or from another origin."""
    check_origin(request)
    session = read_session(request)
    sent = request.headers.get("x-csrf-token", "")
    if session is None or not sent or not secrets.compare_digest(sent, session.csrf):
        raise CrossSiteRequest("页面已过期或请求不完整，请刷新页面后重试。")


SameOrigin = Annotated[None, Depends(check_origin)]
CsrfChecked = Annotated[None, Depends(check_csrf)]
