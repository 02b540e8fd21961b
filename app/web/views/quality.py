"""数据质量 and 同步冲突: the issues to clean up, and the open conflicts with their resolution."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from app.web import charts
from app.web.pages import Uuid, WebDep
from app.web.security import CsrfChecked

router = APIRouter()

Cursor = Annotated[str | None, Query(max_length=512)]
Region = Annotated[str | None, Query(max_length=12)]


@router.get("/quality")
async def quality_page(
    web: WebDep,
    region: Region = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Cursor = None,
) -> Response:
    page = await web.api.get(
        "/api/v1/quality/issues", region=region, kind=kind, limit=50, cursor=cursor
    )
    label = await web.labels()
    counts = page.get("counts", {}).get("by_kind", {})
    option = charts.bars(
        "问题数（按类型）",
        [label("quality_issue_kind", k) for k in counts],
        {"条数": list(counts.values())},
        horizontal=True,
    )
    return await web.render(
        "quality.html",
        page=page,
        counts=counts,
        option=option,
        region=region or "",
        kind=kind or "",
    )


@router.get("/conflicts")
async def conflicts_page(
    web: WebDep,
    region: Region = None,
    status: Annotated[str, Query(pattern="^(open|resolved)$")] = "open",
    cursor: Cursor = None,
) -> Response:
    page = await web.api.get(
        "/api/v1/sync/conflicts", region=region, status=status, limit=50, cursor=cursor
    )
    return await web.render("conflicts.html", page=page, status=status, region=region or "")


@router.post("/conflicts/{conflict_id}/resolve")
async def resolve_conflict(
    web: WebDep,
    _: CsrfChecked,
    conflict_id: Uuid,
    choice: Annotated[str, Form(pattern="^(server|client)$")] = "server",
) -> Response:
    await web.api.call(
        "POST", f"/api/v1/sync/conflicts/{conflict_id}/resolve", json={"choice": choice}
    )
    return web.redirect("/conflicts?done=1")
