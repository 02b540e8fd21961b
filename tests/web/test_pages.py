"""The web app in-process (issue 16, acceptance 3): the session cookie, CSRF, the page policy,
and every page of it as another village's officer, who must reach nothing of village A1.

Every route the app serves outside /api/v1 is in PAGES (tests/test_authz_matrix.py checks
that), with a URL on village A1's objects and whether another village's officer gets it.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.web.session import COOKIE, WebSession
from tests.builders import COUNTY_A, PASSWORD, VILLAGE_A1, World
from tests.monitoring.case_helpers import opened

ORIGIN = {"Origin": "http://test"}
# The case of household a1 that the table's URLs name ({case}), set by the test.
A1 = "{a1}"


def page_routes() -> set[tuple[str, str]]:
    from tests.test_authz_matrix import served_routes

    return {(m, p) for m, p in served_routes(create_app()) if not p.startswith("/api/")} - PUBLIC


# Served outside the app's pages: the API's health and its documentation.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}

# (method, route) → (URL for village A1's objects, form, what officer_a2 gets):
# "refused": 403 or 404; "own": 200 with nothing of household a1 on it; "redirect": 303;
# "bad_login": the login form again, with its Chinese message.
PAGES: dict[tuple[str, str], tuple[str, dict[str, Any] | None, str]] = {
    ("GET", "/"): ("/", None, "redirect"),
    ("GET", "/login"): ("/login", None, "own"),
    ("POST", "/login"): ("/login", {"username": "x", "password": "y"}, "bad_login"),
    ("POST", "/logout"): ("/logout", {}, "redirect"),
    ("GET", "/sync"): (f"/sync?region={VILLAGE_A1}", None, "refused"),
    ("GET", "/sync/live"): (f"/sync/live?region={VILLAGE_A1}", None, "refused"),
    ("GET", "/progress"): ("/progress", None, "redirect"),
    ("GET", "/progress/{code}"): (f"/progress/{VILLAGE_A1}", None, "refused"),
    ("GET", "/households"): ("/households", None, "own"),
    ("GET", "/households/{household_id}"): (f"/households/{A1}", None, "refused"),
    ("GET", "/files/photos/{sha256}/{variant}"): ("/files/photos/{sha}/content", None, "refused"),
    ("GET", "/monitoring"): ("/monitoring", None, "own"),
    ("POST", "/monitoring/cases/{case_id}/steps"): (
        "/monitoring/cases/{case}/steps",
        {"step": "village_review", "decision": "approve"},
        "refused",
    ),
    ("POST", "/monitoring/alerts/{alert_id}/verify"): (
        f"/monitoring/alerts/{uuid.uuid4()}/verify",
        {"outcome": "no_risk", "note": "已核实"},
        "refused",
    ),
    ("POST", "/monitoring/alerts/import"): ("/monitoring/alerts/import", "file", "refused"),
    ("GET", "/quality"): ("/quality", None, "own"),
    ("GET", "/conflicts"): ("/conflicts", None, "refused"),  # officers see none
    ("POST", "/conflicts/{conflict_id}/resolve"): (
        f"/conflicts/{uuid.uuid4()}/resolve",
        {"choice": "client"},
        "refused",
    ),
    ("GET", "/reports/monthly"): (f"/reports/monthly?region={VILLAGE_A1}", None, "refused"),
    ("GET", "/files/exports/{name}"): (
        f"/files/exports/households.csv?region={VILLAGE_A1}",
        None,
        "refused",
    ),
    ("GET", "/admin/users"): ("/admin/users", None, "refused"),
    ("POST", "/admin/users"): (
        "/admin/users",
        {
            "username": "new",
            "display_name": "新",
            "role": "officer",
            "password": "p" * 12,
            "regions": VILLAGE_A1,
        },
        "refused",
    ),
    ("POST", "/admin/users/{user_id}/regions"): (
        "/admin/users/{officer_a1}/regions",
        {"regions": VILLAGE_A1},
        "refused",
    ),
    ("POST", "/admin/users/{user_id}/active"): (
        "/admin/users/{officer_a1}/active",
        {"active": "false"},
        "refused",
    ),
    ("POST", "/admin/users/{user_id}/password"): (
        "/admin/users/{officer_a1}/password",
        {"password": "p" * 12},
        "refused",
    ),
    ("GET", "/admin/clients"): ("/admin/clients", None, "refused"),
    ("POST", "/admin/clients"): (
        "/admin/clients",
        {"name": "x", "region_code": VILLAGE_A1, "scopes": "households:read"},
        "refused",
    ),
    ("POST", "/admin/clients/{client_id}/rotate"): ("/admin/clients/c-1/rotate", {}, "refused"),
    ("POST", "/admin/clients/{client_id}/disable"): ("/admin/clients/c-1/disable", {}, "refused"),
    ("GET", "/admin/webhooks"): ("/admin/webhooks", None, "refused"),
    ("POST", "/admin/webhooks"): (
        "/admin/webhooks",
        {"url": "https://example.org/h", "region_code": VILLAGE_A1, "event_types": "visit.created"},
        "refused",
    ),
    ("POST", "/admin/webhooks/{webhook_id}/test"): (
        f"/admin/webhooks/{uuid.uuid4()}/test",
        {},
        "refused",
    ),
    ("POST", "/admin/webhooks/{webhook_id}/disable"): (
        f"/admin/webhooks/{uuid.uuid4()}/disable",
        {},
        "refused",
    ),
    ("GET", "/admin/import"): ("/admin/import", None, "own"),
    ("POST", "/admin/import"): ("/admin/import", "file", "refused"),
}


async def sign_in(client: httpx.AsyncClient, world: World, who: str) -> str:
    """Sign in through the login form; the session's CSRF token from the page."""
    response = await client.post(
        "/login",
        data={"username": world.users[who].username, "password": PASSWORD, "next": "/households"},
        headers=ORIGIN,
    )
    assert response.status_code == 303, response.text
    page = await client.get("/households")
    assert page.status_code == 200, page.text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match
    return match.group(1)


def test_every_page_route_is_in_the_table() -> None:
    assert page_routes() == set(PAGES), "a page route without its row in PAGES, or a stale row"


async def test_another_villages_officer_reaches_nothing_of_village_a1(
    client: httpx.AsyncClient, world: World
) -> None:
    case = await opened(client, world, world.households["a1"])
    names = {
        "a1": str(world.households["a1"].id),
        "case": case["id"],
        "sha": "ab" * 32,
        "officer_a1": str(world.users["officer_a1"].id),
    }
    csrf = await sign_in(client, world, "officer_a2")
    number_a1 = world.households["a1"].number
    for (method, route), (url, form, expected) in PAGES.items():
        url = url.format(**names)
        headers = {**ORIGIN, "X-CSRF-Token": csrf}
        if method == "GET":
            response = await client.get(url)
        elif form == "file":
            response = await client.post(
                url, files={"file": ("a.csv", b"x\n", "text/csv")}, headers=headers
            )
        else:
            response = await client.post(url, data=form, headers=headers)
        where = f"{method} {route}: {response.status_code} {response.text[:300]}"
        if expected == "refused":
            assert response.status_code in (401, 403, 404), where
        elif expected == "bad_login":
            assert response.status_code == 400 and "用户名或密码不正确" in response.text, where
        elif expected == "redirect":
            assert response.status_code in (303, 204), where
        else:
            assert response.status_code == 200, where
            assert number_a1 not in response.text, where
        if route == "/logout":
            csrf = await sign_in(client, world, "officer_a2")


async def test_the_session_cookie_is_httponly_and_sign_out_ends_the_login(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/login",
        data={"username": world.users["admin_a"].username, "password": PASSWORD},
        headers=ORIGIN,
    )
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if "fieldsync_session" in c)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = await client.get("/households")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf
    out = await client.post("/logout", headers={**ORIGIN, "X-CSRF-Token": csrf.group(1)})
    assert out.status_code == 303
    assert (await client.get("/households")).status_code == 303  # to /login


async def test_a_wrong_password_is_told_in_chinese_and_next_stays_on_this_server(
    client: httpx.AsyncClient, world: World
) -> None:
    refused = await client.post(
        "/login",
        data={"username": world.users["admin_a"].username, "password": "nope"},
        headers=ORIGIN,
    )
    assert refused.status_code == 400
    assert "用户名或密码不正确" in refused.text
    away = await client.post(
        "/login",
        data={
            "username": world.users["admin_a"].username,
            "password": PASSWORD,
            "next": "//evil.example/x",
        },
        headers=ORIGIN,
    )
    assert away.headers["location"] == "/"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": "http://evil.example"}, id="other-origin"),
        pytest.param({}, id="no-origin"),
        pytest.param({"Origin": "http://test", "X-CSRF-Token": "forged"}, id="forged-token"),
        pytest.param({"Origin": "http://test"}, id="no-token"),
    ],
)
async def test_a_change_without_the_sessions_token_changes_nothing(
    client: httpx.AsyncClient, world: World, headers: dict[str, str]
) -> None:
    case = await opened(client, world, world.households["a1"])
    await sign_in(client, world, "officer_a1")
    response = await client.post(
        f"/monitoring/cases/{case['id']}/steps",
        data={"step": "village_review", "decision": "approve"},
        headers=headers,
    )
    assert response.status_code == 403
    assert "请求" in response.text
    after = await client.get(
        f"/api/v1/monitoring-cases/{case['id']}", headers=world.headers("admin_a")
    )
    assert after.json()["status"] == "proposed"


async def test_pages_carry_a_policy_without_inline_scripts(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world, "admin_a")
    for url in (
        "/login",
        "/households",
        f"/households/{world.households['a1'].id}",
        f"/progress/{VILLAGE_A1}",
        "/monitoring",
    ):
        response = await client.get(url)
        policy = response.headers["content-security-policy"]
        script = next(d for d in policy.split("; ") if d.startswith("script-src"))
        assert script == "script-src 'self'", policy
        assert "frame-ancestors 'none'" in policy
        # Every <script> has a src, or is data (JSON) that is never run.
        for tag in re.findall(r"<script\b[^>]*>", response.text):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert response.headers["x-content-type-options"] == "nosniff"
    # The API's own answers keep the strict policy of JSON: nothing may run or load.
    api = (await client.get("/healthz")).headers["content-security-policy"]
    assert api == "default-src 'none'; frame-ancestors 'none'"


async def test_an_expiring_access_token_is_refreshed_by_the_next_page(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world, "admin_a")
    session = WebSession.decode(client.cookies[COOKIE])
    assert session is not None
    session.expires_at = time.time() + 5  # inside the refresh margin
    client.cookies.clear()  # the browser below is this request's Cookie header alone
    expiring = {"Cookie": f"{COOKIE}={session.encode()}"}

    page = await client.get("/households", headers=expiring)

    assert page.status_code == 200
    written = next(c for c in page.headers.get_list("set-cookie") if c.startswith(COOKIE))
    renewed = WebSession.decode(written.split(";")[0].split("=", 1)[1])
    assert renewed is not None
    assert renewed.access_token != session.access_token
    assert renewed.refresh_token != session.refresh_token  # rotated
    assert renewed.csrf == session.csrf
    # The old refresh token was spent: using it again ends the login (reuse detection), so
    # the next page signs the browser out rather than showing anything.
    client.cookies.clear()
    assert (await client.get("/households", headers=expiring)).status_code == 303


async def test_the_sync_table_polls_with_the_apis_etag(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world, "admin_a")
    first = await client.get("/sync/live", params={"region": COUNTY_A})
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"

    again = await client.get(
        "/sync/live", params={"region": COUNTY_A}, headers={"If-None-Match": tag}
    )
    assert again.status_code == 304
    assert again.headers["etag"] == tag


async def test_a_login_that_never_synced_is_shown_apart(
    client: httpx.AsyncClient, world: World
) -> None:
    """The county PC (this browser's own login) is listed under 登录后从未同步, not among the
    phones, and counted apart from the ones behind."""
    await sign_in(client, world, "admin_a")
    page = await client.get("/sync/live", params={"region": COUNTY_A})
    assert page.status_code == 200
    phones, apart = page.text.split('id="never-synced"')
    assert "登录后从未同步的设备" in phones
    assert 'data-device="web-' not in phones
    assert 'data-device="web-' in apart
