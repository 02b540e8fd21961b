"""登录 and 退出: the token endpoint's password grant, kept in the session cookie."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.web.client import ApiError, api_client, request_tokens
from app.web.pages import WebDep, templates
from app.web.security import CsrfChecked, SameOrigin
from app.web.session import WebSession, clear_session, read_session, write_session

router = APIRouter()

# One device per browser, kept across sign-ins, so the device list is not one row per login.
BROWSER_COOKIE = "fieldsync_browser"
BROWSER_COOKIE_MAX_AGE = 365 * 24 * 3600

LOGIN_REFUSED = {
    "invalid_grant": "用户名或密码不正确，或账号已停用。",
    "invalid_request": "请填写用户名和密码。",
}


def local_target(value: str | None) -> str:
    """Where to go after signing in: a path of this server only (no open redirect)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


def _login_page(
    request: Request, *, next_url: str, username: str = "", message: str = "", status: int = 200
) -> Response:
    return templates.TemplateResponse(
        request,
        "login.html",
        {
            "me": None,
            "csrf": "",
            "nav": "",
            "next": next_url,
            "username": username,
            "message": message,
        },
        status_code=status,
    )


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_url=local_target(next))


@router.post("/login")
async def log_in(
    request: Request,
    _: SameOrigin,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    target = local_target(next)
    browser = request.cookies.get(BROWSER_COOKIE)
    if not browser or len(browser) > 64 or not browser.isalnum():
        browser = secrets.token_hex(8)
    device_id = f"web-{browser}"
    try:
        tokens = await request_tokens(
            request,
            {
                "grant_type": "password",
                "username": username.strip(),
                "password": password,
                "device_id": device_id,
            },
        )
    except ApiError as exc:
        code = str(exc.problem.get("error", ""))
        if exc.status == 429:
            message = "登录尝试过于频繁，请稍后再试。"
        else:
            message = LOGIN_REFUSED.get(code, "登录失败，请稍后再试。")
        return _login_page(
            request, next_url=target, username=username, message=message, status=exc.status
        )
    response = RedirectResponse(target, status_code=303)
    write_session(response, request, WebSession.start(tokens=tokens, device_id=device_id))
    response.set_cookie(
        BROWSER_COOKIE,
        browser,
        max_age=BROWSER_COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def log_out(request: Request, web: WebDep, _: CsrfChecked) -> Response:
    """End the login at the API too: its refresh token stops working everywhere."""
    session = read_session(request)
    if session is not None:
        async with api_client(request) as client:
            await client.post("/api/v1/auth/revoke", data={"token": session.refresh_token})
    response = web.redirect("/login")
    clear_session(response, request)
    return response
