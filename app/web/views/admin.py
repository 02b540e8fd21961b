"""管理 (county admin): users, API clients, webhooks, and the household import from Excel.

Every action is the API's: a page that asks for what the person may not do gets the API's
refusal, shown in Chinese.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response

from app.web.client import ApiError
from app.web.pages import ClientId, Uuid, Web, WebDep
from app.web.security import CsrfChecked

router = APIRouter(prefix="/admin")

Text = Annotated[str, Form(max_length=200)]
ROLES_FOR_PEOPLE = ("officer", "first_secretary", "town_staff", "county_admin")


async def _regions_below(web: Web) -> list[dict[str, Any]]:
    """Towns and villages under the admin's regions, for the pickers."""
    me = await web.me()
    found: list[dict[str, Any]] = []
    for region in me["regions"]:
        towns = (await web.api.get("/api/v1/regions", parent=region["code"], limit=200))["items"]
        for town in towns:
            found.append(town)
            villages = await web.api.get("/api/v1/regions", parent=town["code"], limit=200)
            found.extend(villages["items"])
    return found


# --- users --------------------------------------------------------------------------------


@router.get("/users")
async def users_page(
    web: WebDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    page = await web.api.get("/api/v1/users", q=q, limit=50, cursor=cursor)
    me = await web.me()
    regions = await _regions_below(web)
    names = {r["code"]: r["name"] for r in [*me["regions"], *regions]}
    return await web.render(
        "admin_users.html",
        page=page,
        q=q or "",
        regions=regions,
        region_names=names,
        roles=ROLES_FOR_PEOPLE,
    )


@router.post("/users")
async def create_user(
    web: WebDep,
    _: CsrfChecked,
    username: Annotated[str, Form(max_length=64)],
    display_name: Text,
    role: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=256)],
    regions: Annotated[list[str], Form()],
) -> Response:
    await web.api.call(
        "POST",
        "/api/v1/users",
        json={
            "username": username.strip(),
            "display_name": display_name.strip(),
            "role": role,
            "password": password,
            "regions": regions,
        },
    )
    return web.redirect("/admin/users?done=created")


@router.post("/users/{user_id}/regions")
async def assign_regions(
    web: WebDep, _: CsrfChecked, regions: Annotated[list[str], Form()], user_id: Uuid
) -> Response:
    await web.api.call("PUT", f"/api/v1/users/{user_id}/regions", json={"regions": regions})
    return web.redirect("/admin/users?done=regions")


@router.post("/users/{user_id}/active")
async def set_active(
    web: WebDep,
    _: CsrfChecked,
    active: Annotated[str, Form(pattern="^(true|false)$")],
    user_id: Uuid,
) -> Response:
    await web.api.call("PATCH", f"/api/v1/users/{user_id}", json={"is_active": active == "true"})
    return web.redirect("/admin/users?done=active")


@router.post("/users/{user_id}/password")
async def reset_password(
    web: WebDep,
    _: CsrfChecked,
    password: Annotated[str, Form(max_length=256)],
    user_id: Uuid,
) -> Response:
    await web.api.call("POST", f"/api/v1/users/{user_id}/password", json={"password": password})
    return web.redirect("/admin/users?done=password")


# --- API clients --------------------------------------------------------------------------

CLIENT_SCOPES = (
    "households:read",
    "records:read",
    "progress:read",
    "photos:read",
    "sync:read",
    "pii:read",
)


async def _clients_page(web: Web, secret: dict[str, Any] | None = None) -> Response:
    clients = await web.api.get("/api/v1/clients", limit=100)
    me = await web.me()
    # A new secret is shown once, on this answer only; the app never stores it.
    return await web.render(
        "admin_clients.html",
        clients=clients["items"],
        scopes=CLIENT_SCOPES,
        regions=me["regions"],
        secret=secret,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/clients")
async def clients_page(web: WebDep) -> Response:
    return await _clients_page(web)


@router.post("/clients")
async def create_client(
    web: WebDep,
    _: CsrfChecked,
    name: Text,
    region_code: Annotated[str, Form(max_length=21)],
    scopes: Annotated[list[str], Form()],
) -> Response:
    created = await web.api.call(
        "POST",
        "/api/v1/clients",
        json={"name": name.strip(), "region_code": region_code, "scopes": scopes},
    )
    return await _clients_page(web, created)


@router.post("/clients/{client_id}/rotate")
async def rotate_client(web: WebDep, _: CsrfChecked, client_id: ClientId) -> Response:
    return await _clients_page(
        web, await web.api.call("POST", f"/api/v1/clients/{client_id}/rotate")
    )


@router.post("/clients/{client_id}/disable")
async def disable_client(web: WebDep, _: CsrfChecked, client_id: ClientId) -> Response:
    await web.api.call("POST", f"/api/v1/clients/{client_id}/disable")
    return web.redirect("/admin/clients")


# --- webhooks -----------------------------------------------------------------------------


async def _webhooks_page(
    web: Web, *, show: str | None = None, secret: dict[str, Any] | None = None
) -> Response:
    hooks = (await web.api.get("/api/v1/webhooks", limit=100))["items"]
    deliveries = None
    if show:
        deliveries = (await web.api.get(f"/api/v1/webhooks/{show}/deliveries", limit=20))["items"]
    me = await web.me()
    return await web.render(
        "admin_webhooks.html",
        hooks=hooks,
        deliveries=deliveries,
        show=show,
        regions=me["regions"],
        secret=secret,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/webhooks")
async def webhooks_page(web: WebDep, show: str | None = Query(None, max_length=36)) -> Response:
    return await _webhooks_page(web, show=show)


@router.post("/webhooks")
async def create_webhook(
    web: WebDep,
    _: CsrfChecked,
    url: Annotated[str, Form(max_length=2000)],
    region_code: Annotated[str, Form(max_length=21)],
    event_types: Annotated[list[str], Form()],
    description: Text = "",
) -> Response:
    created = await web.api.call(
        "POST",
        "/api/v1/webhooks",
        json={
            "url": url.strip(),
            "region_code": region_code,
            "event_types": event_types,
            "description": description or None,
        },
    )
    return await _webhooks_page(web, secret=created)


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(web: WebDep, _: CsrfChecked, webhook_id: Uuid) -> Response:
    await web.api.call("POST", f"/api/v1/webhooks/{webhook_id}/test")
    return web.redirect(f"/admin/webhooks?show={webhook_id}")


@router.post("/webhooks/{webhook_id}/disable")
async def disable_webhook(web: WebDep, _: CsrfChecked, webhook_id: Uuid) -> Response:
    await web.api.call("POST", f"/api/v1/webhooks/{webhook_id}/disable")
    return web.redirect("/admin/webhooks")


# --- household import ---------------------------------------------------------------------


@router.get("/import")
async def import_page(web: WebDep) -> Response:
    return await web.render("admin_import.html")


@router.post("/import")
async def import_households(
    web: WebDep,
    _: CsrfChecked,
    file: Annotated[UploadFile, File()],
    apply: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Dry run first; the same form's second button writes (all rows or none)."""
    content = await file.read()
    response = await web.api.send(
        "POST",
        "/api/v1/households/imports",
        files={
            "file": (
                file.filename or "households.xlsx",
                content,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        },
        data={"dry_run": "false" if apply == "yes" else "true"},
    )
    body = response.json() if response.content else {}
    if response.status_code >= 400 and "rows" not in body:
        raise ApiError(response)
    return await web.render(
        "_import_report.html",
        report=body,
        applied=apply == "yes" and response.status_code < 300,
        filename=file.filename or "",
    )
