"""户: the list with search, and one household's page: timeline, income against the line of its
time, 两不愁三保障, measures, photos before and after, its monitoring case."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from app.web import charts
from app.web.client import document
from app.web.pages import Sha256, Uuid, WebDep

router = APIRouter()

GUARANTEES = ["food", "clothing", "education", "medical", "housing", "water"]
# The poverty line counted until 2020; the monitoring threshold since.
LAST_POVERTY_LINE_YEAR = 2020


@router.get("/households")
async def households_page(
    web: WebDep,
    q: str | None = Query(None, max_length=64),
    region: str | None = Query(None, max_length=12),
    status: str | None = Query(None, max_length=32),
    cursor: str | None = Query(None, max_length=512),
) -> Response:
    page = await web.api.get(
        "/api/v1/households", q=q, region=region, status=status, limit=50, cursor=cursor
    )
    return await web.render(
        "households.html", page=page, q=q or "", region=region or "", status=status or ""
    )


def _thresholds(rows: list[dict[str, Any]], village: str, field: str) -> dict[int, float]:
    """Per year, the most local value of `field` that applies to the village."""
    best: dict[int, tuple[int, float]] = {}
    for row in rows:
        scope = str(row["scope"])
        rank = 0 if scope == "national" else len(scope.rstrip("0"))
        value = _money(row.get(field))
        if value is None or (rank and not village.startswith(scope.rstrip("0"))):
            continue
        year = int(row["year"])
        if year not in best or rank > best[year][0]:
            best[year] = (rank, value)
    return {year: value for year, (_, value) in best.items()}


def _money(value: Any) -> float | None:
    return float(Decimal(str(value))) if value not in (None, "") else None


def income_chart(
    progress: dict[str, Any], thresholds: list[dict[str, Any]], village: str
) -> dict[str, Any] | None:
    series = (progress.get("income") or {}).get("series") or []
    by_year = {int(s["year"]): _money(s["per_capita"]) for s in series}
    line = _thresholds(thresholds, village, "poverty_line")
    threshold = _thresholds(thresholds, village, "monitoring_threshold")
    if not by_year:
        return None
    first, last = min(by_year), max(by_year)
    years = (
        list(range(min(first, 2014), last + 1))
        if first <= LAST_POVERTY_LINE_YEAR
        else list(range(first, last + 1))
    )
    return charts.income(
        years,
        [by_year.get(y) for y in years],
        [line.get(y) if y <= LAST_POVERTY_LINE_YEAR else None for y in years],
        [threshold.get(y) if y > LAST_POVERTY_LINE_YEAR else None for y in years],
    )


@router.get("/households/{household_id}")
async def household_page(web: WebDep, household_id: Uuid) -> Response:
    base = f"/api/v1/households/{household_id}"
    household = await web.api.get(base)
    progress = await web.api.get(f"{base}/progress")
    timeline = await web.api.get(f"{base}/timeline", limit=100)
    measures = await web.api.get(f"{base}/measures", limit=100)
    photos = await web.api.get(f"{base}/photos", limit=100)
    cases = await web.api.get(f"{base}/monitoring-cases", limit=20)
    thresholds = await web.api.get("/api/v1/thresholds")
    case = None
    if progress["monitoring"]["case"]:
        case = await web.api.get(f"/api/v1/monitoring-cases/{progress['monitoring']['case']['id']}")
    # The timeline names visits; their findings come from the visits themselves.
    visits = {v["id"]: v for v in (await web.api.get(f"{base}/visits", limit=100))["items"]}
    return await web.render(
        "household.html",
        household=household,
        progress=progress,
        timeline=list(reversed(timeline["items"])),
        visits=visits,
        measures=measures["items"],
        photos=photos["items"],
        cases=cases["items"],
        case=case,
        guarantees=GUARANTEES,
        income_option=income_chart(progress, thresholds, household["village_code"]),
    )


@router.get("/files/photos/{sha256}/{variant}")
async def photo_file(
    web: WebDep, sha256: Sha256, variant: str = Path(pattern="^(thumbnail|content)$")
) -> Response:
    """A photo's bytes as the person may see them: the API decides."""
    response = await web.api.send("GET", f"/api/v1/photos/{sha256}/{variant}")
    if response.status_code != 200:
        document(response)  # raises ApiError: the page shows why
    return web.finish(
        Response(
            response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
            headers={"Cache-Control": "private, max-age=3600"},
        )
    )
