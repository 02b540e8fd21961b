"""Rendering: the request's API, the templates and their filters, and the answers a page gives
when the API refuses (sign in again, or a Chinese error page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.web.client import Api, ApiError, SignedOut, api_client
from app.web.session import clear_session, read_session, write_session

HERE = Path(__file__).parent
# China has kept one offset all year since 1991: no time-zone database needed.
CHINA = timezone(timedelta(hours=8), "CST")

templates = Jinja2Templates(directory=HERE / "templates")

# Path parameters of the pages (checked here so a bad one is a 422 before any API call).
Uuid = Annotated[str, PathParam(pattern=r"^[0-9a-fA-F-]{36}$")]
Sha256 = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")]
ClientId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
RegionCode = Annotated[str, PathParam(pattern=r"^[0-9]{12}$")]


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def china_time(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An API timestamp (UTC) as China time; an empty string for none."""
    parsed = _parse_time(value)
    return parsed.astimezone(CHINA).strftime(fmt) if parsed else ""


def yuan(value: Any) -> str:
    """Money as the API sends it (a decimal string) with thousands separators."""
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)


def percent(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


templates.env.filters["china_time"] = china_time
templates.env.filters["china_date"] = lambda v: china_time(v, "%Y-%m-%d")
templates.env.filters["yuan"] = yuan
templates.env.filters["percent"] = percent
templates.env.globals["today"] = lambda: datetime.now(CHINA).date()


class Labels:
    """Chinese labels of the API's codes, from its own vocabulary."""

    def __init__(self, vocabulary: dict[str, list[dict[str, str]]]):
        self._by_kind = {
            kind: {entry["code"]: entry["label"] for entry in entries}
            for kind, entries in vocabulary.items()
        }

    def __call__(self, kind: str, code: Any) -> str:
        if code is None or code == "":
            return "—"
        return self._by_kind.get(kind, {}).get(str(code), str(code))

    def options(self, kind: str) -> list[tuple[str, str]]:
        return list(self._by_kind.get(kind, {}).items())


class Web:
    """One page request: the API as the signed-in person, and how to answer."""

    def __init__(self, request: Request, api: Api):
        self.request = request
        self.api = api
        self._me: dict[str, Any] | None = None

    async def me(self) -> dict[str, Any]:
        if self._me is None:
            self._me = await self.api.get("/api/v1/me")
        return self._me

    async def labels(self) -> Labels:
        # The vocabulary is the same for everyone and changes only with a release.
        state = self.request.app.state
        if getattr(state, "web_labels", None) is None:
            state.web_labels = Labels(await self.api.get("/api/v1/vocabulary"))
        labels: Labels = state.web_labels
        return labels

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def finish(self, response: Response) -> Response:
        """Write the session back when the API client refreshed its tokens."""
        if self.api.session_changed and self.api.session is not None:
            write_session(response, self.request, self.api.session)
        return response

    async def render(
        self,
        template: str,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        me = await self.me()
        response = templates.TemplateResponse(
            self.request,
            template,
            {
                "me": me,
                "label": await self.labels(),
                "csrf": self.api.session.csrf if self.api.session else "",
                "nav": self.request.url.path,
                **context,
            },
            status_code=status_code,
            headers=headers,
        )
        return self.finish(response)

    def redirect(self, url: str) -> Response:
        """After a change: htmx follows HX-Redirect, a plain form follows 303."""
        if self.is_htmx:
            return self.finish(Response(status_code=204, headers={"HX-Redirect": url}))
        return self.finish(RedirectResponse(url, status_code=303))


async def web_page(request: Request) -> AsyncIterator[Web]:
    async with api_client(request) as client:
        web = Web(request, Api(request, client, read_session(request)))
        request.state.web = web
        yield web


WebDep = Annotated[Web, Depends(web_page)]


def sign_in_again(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    login = "/login?next=" + quote(target, safe="")
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=204, headers={"HX-Redirect": login})
    else:
        response = RedirectResponse(login, status_code=303)
    clear_session(response, request)
    return response


ERROR_TITLES = {
    400: "请求有误",
    403: "无权访问",
    404: "未找到",
    409: "数据冲突",
    413: "文件过大",
    422: "填写有误",
    429: "请求过于频繁",
    503: "服务繁忙",
}


async def error_page(request: Request, exc: ApiError) -> Response:
    status = exc.status if 400 <= exc.status < 600 else 502
    context = {
        "title": ERROR_TITLES.get(status, "出错了"),
        "message": exc.message,
        "errors": exc.field_errors,
        "status": status,
    }
    web: Web | None = getattr(request.state, "web", None)
    if request.headers.get("hx-request") == "true":
        # A failed action shows its message where the page keeps its notices.
        response = templates.TemplateResponse(
            request,
            "_notice.html",
            {**context, "kind": "error"},
            status_code=200,
            headers={"HX-Retarget": "#notice", "HX-Reswap": "innerHTML"},
        )
    else:
        response = templates.TemplateResponse(
            request, "error.html", {**context, "me": None, "nav": ""}, status_code=status
        )
    return web.finish(response) if web else response


def install_page_errors(app: FastAPI) -> None:
    async def on_signed_out(request: Request, exc: Exception) -> Response:
        return sign_in_again(request)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return await error_page(request, exc)

    app.add_exception_handler(SignedOut, on_signed_out)
    app.add_exception_handler(ApiError, on_api_error)


def parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


templates.env.globals["parse_date"] = parse_date
