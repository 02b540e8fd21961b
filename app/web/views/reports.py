"""台账: a county's or town's monthly summary that prints cleanly, and the exports, fetched
through the API as the person may see them."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.web.client import document
from app.web.pages import CHINA, WebDep
from app.web.views.progress import crumbs

router = APIRouter()

EXPORTS = {
    "households.xlsx": "/api/v1/exports/households.xlsx",
    "households.csv": "/api/v1/exports/households.csv",
    "monitoring-cases.csv": "/api/v1/exports/monitoring-cases.csv",
}


@router.get("/reports/monthly")
async def monthly_report(
    web: WebDep, region: str | None = Query(None, pattern=r"^[0-9]{12}$")
) -> Response:
    me = await web.me()
    code = region or (me["regions"][0]["code"] if me["regions"] else "")
    figures = await web.api.get(f"/api/v1/regions/{code}/progress")
    cases = await web.api.get("/api/v1/monitoring-cases", region=code, limit=200)
    now = datetime.now(CHINA)
    return await web.render(
        "report_monthly.html",
        figures=figures,
        children=figures.get("children") or [],
        cases=cases["items"],
        more_cases=cases["next_cursor"] is not None,
        crumbs=await crumbs(web, code),
        month=f"{now.year}年{now.month}月",
        printed=now.strftime("%Y-%m-%d %H:%M"),
    )


@router.get("/files/exports/{name}")
async def export_file(
    web: WebDep, name: str, region: str | None = Query(None, pattern=r"^[0-9]{12}$")
) -> Response:
    """An export as the API gives it to this person (masking and villages included)."""
    path = EXPORTS.get(name)
    if path is None:
        return Response("未找到", status_code=404, media_type="text/plain; charset=utf-8")
    response = await web.api.send("GET", path, params={"region": region})
    if response.status_code != 200:
        document(response)  # raises: the error page says why
    headers = {"Cache-Control": "private, no-store"}
    if disposition := response.headers.get("content-disposition"):
        headers["Content-Disposition"] = disposition
    return web.finish(
        Response(response.content, media_type=response.headers.get("content-type"), headers=headers)
    )
