"""进度: county → town → village, with the region figures and their charts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, Response

from app.web import charts
from app.web.pages import RegionCode, Web, WebDep

router = APIRouter()

LEVEL_NAMES = {1: "省", 2: "市", 3: "县", 4: "乡镇", 5: "村"}


async def crumbs(web: Web, code: str) -> list[dict[str, Any]]:
    """The region and its parents down from the highest one the person may see."""
    me = await web.me()
    own = {r["code"] for r in me["regions"]}
    chain: list[dict[str, Any]] = []
    current: str | None = code
    while current:
        region = await web.api.get(f"/api/v1/regions/{current}")
        chain.append(region)
        if region["code"] in own:
            break
        current = region.get("parent_code")
    return list(reversed(chain))


@router.get("/progress")
async def progress_home(web: WebDep) -> Response:
    me = await web.me()
    if len(me["regions"]) == 1:
        return web.finish(RedirectResponse(f"/progress/{me['regions'][0]['code']}", 303))
    return await web.render("progress_choose.html", regions=me["regions"])


@router.get("/progress/{code}")
async def progress_page(
    web: WebDep, code: RegionCode, cursor: str | None = Query(None, max_length=512)
) -> Response:
    figures = await web.api.get(f"/api/v1/regions/{code}/progress")
    label = await web.labels()
    children = figures.get("children") or []
    households = None
    if figures["level"] == 5:
        households = await web.api.get("/api/v1/households", region=code, limit=50, cursor=cursor)
    names = [c["name"] for c in children]
    mon = figures["monitoring"]
    option = {
        "status": charts.pie(
            "户数（按状态）",
            figures["households_by_status"],
            lambda c: label("household_status", c),
        ),
        "monitoring_category": charts.pie(
            "监测对象（按类别）",
            mon["cases_by_category"],
            lambda c: label("case_category", c),
        ),
        "monitoring_status": charts.bars(
            "监测对象（按状态）",
            [label("case_status", c) for c in mon["cases_by_status"]],
            {"户数": list(mon["cases_by_status"].values())},
            horizontal=True,
        ),
        "risk": charts.bars(
            "风险提示",
            [label("risk_flag", c) for c in figures["risk_flags"]],
            {"户数": list(figures["risk_flags"].values())},
            horizontal=True,
        ),
    }
    if children:
        option["incidence"] = charts.bars(
            "贫困发生率与退出标准",
            names,
            {"贫困发生率": [c["poverty_incidence"] for c in children]},
            percent=True,
            line=("退出标准", figures["incidence_threshold"] or 0.0),
        )
        option["coverage"] = charts.bars(
            "走访覆盖率",
            names,
            {
                "30天内": [c["visit_coverage"]["visited_30d"] for c in children],
                "90天内": [c["visit_coverage"]["visited_90d"] for c in children],
            },
            percent=True,
        )
    return await web.render(
        "progress.html",
        figures=figures,
        children=children,
        households=households,
        crumbs=await crumbs(web, code),
        option=option,
        level_names=LEVEL_NAMES,
    )
