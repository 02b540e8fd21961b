"""同步状态: which phones have synced, which are behind, what is missing or in conflict.

The table refreshes itself: htmx asks `/sync/live` every few seconds, the browser revalidates
with `If-None-Match`, and the ETag is the API's own, so a poll that finds nothing new is
answered 304 by the API and by us without rendering anything.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.web.client import document
from app.web.pages import Web, WebDep

router = APIRouter()

POLL_SECONDS = 5


async def _region(web: Web, region: str | None) -> str:
    if region:
        return region
    me = await web.me()
    return str(me["regions"][0]["code"]) if me["regions"] else ""


def _village_names(status: dict[str, Any]) -> dict[str, str]:
    return {v["code"]: v["name"] for v in status["villages"]}


@router.get("/sync")
async def sync_page(web: WebDep, region: str | None = Query(None, max_length=12)) -> Response:
    code = await _region(web, region)
    response = await web.api.send("GET", "/api/v1/sync/status", params={"region": code})
    status = document(response)
    return await web.render(
        "sync.html",
        status=status,
        region=code,
        village_names=_village_names(status),
        poll_seconds=POLL_SECONDS,
    )


@router.get("/sync/live")
async def sync_live(web: WebDep, region: str = Query(..., max_length=12)) -> Response:
    conditional = {}
    if tag := web.request.headers.get("if-none-match"):
        conditional["If-None-Match"] = tag
    response = await web.api.send(
        "GET", "/api/v1/sync/status", params={"region": region}, headers=conditional
    )
    if response.status_code == 304:
        return web.finish(Response(status_code=304, headers=_cache(response)))
    status = document(response)
    page = await web.render(
        "_sync_live.html",
        status=status,
        region=region,
        village_names=_village_names(status),
        poll_seconds=POLL_SECONDS,
    )
    page.headers.update(_cache(response))
    return page


def _cache(response: Any) -> dict[str, str]:
    # The browser keeps the fragment and asks again with If-None-Match every time.
    return {"ETag": response.headers.get("etag", ""), "Cache-Control": "private, no-cache"}
