"""/thresholds: the seeded national figures, and a county admin's own figures for their county."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.thresholds.models import PovertyThreshold
from tests.assertions import problem
from tests.builders import COUNTY_A, COUNTY_B, TOWN_A1, VILLAGE_A1, World
from tests.records.bodies import API, Table

# DOMAIN.md, yuan per person-year; 2021 onwards only the monitoring threshold.
NATIONAL_LINES = {
    2010: "2300.00", 2011: "2536.00", 2012: "2625.00", 2013: "2736.00", 2014: "2800.00",
    2015: "2855.00", 2016: "2952.00", 2017: "2952.00", 2018: "2995.00", 2019: "3218.00",
    2020: "4000.00",
}  # fmt: skip


async def test_the_national_figures_are_seeded(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"{API}/thresholds", headers=world.headers("officer_a1"))
    assert response.status_code == 200, response.text
    national = {row["year"]: row for row in response.json() if row["scope"] == "national"}
    assert {year: row["poverty_line"] for year, row in national.items() if year <= 2020} == (
        NATIONAL_LINES
    )
    assert all(national[year]["monitoring_threshold"] is None for year in NATIONAL_LINES)
    assert (national[2021]["poverty_line"], national[2021]["monitoring_threshold"]) == (
        None,
        "6000.00",
    )
    assert set(national) == {*NATIONAL_LINES, 2021}


async def count_rows(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(PovertyThreshold)) or 0)


@pytest.mark.parametrize("scope", [COUNTY_A, TOWN_A1, VILLAGE_A1])
async def test_a_county_admin_sets_figures_inside_the_county(
    client: httpx.AsyncClient, world: World, scope: str
) -> None:
    url = f"{API}/thresholds/{scope}/2020"
    headers = world.headers("admin_a")
    created = await client.put(
        url, json={"poverty_line": 4200, "monitoring_threshold": "8050.5"}, headers=headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["scope"], body["year"]) == (scope, 2020)
    assert (body["poverty_line"], body["monitoring_threshold"]) == ("4200.00", "8050.50")

    replaced = await client.put(
        url, json={"monitoring_threshold": 8700, "note": "省定"}, headers=headers
    )
    assert replaced.status_code == 200, replaced.text
    # The row is replaced as a whole: the line not given again is gone.
    assert (replaced.json()["poverty_line"], replaced.json()["monitoring_threshold"]) == (
        None,
        "8700.00",
    )
    assert replaced.json()["note"] == "省定"


# (caller, scope, status, code): refused, and nothing stored.
REFUSED: list[tuple[str, str, int, str]] = [
    ("officer_a1", COUNTY_A, 403, "forbidden"),
    ("secretary_a1", VILLAGE_A1, 403, "forbidden"),
    ("admin_b", COUNTY_A, 403, "forbidden"),
    ("admin_a", COUNTY_B, 403, "forbidden"),
    ("admin_a", "national", 422, "validation_failed"),  # not a region code
    ("admin_a", "371522101299", 422, "validation_failed"),  # no such village in county A
    ("admin_a", "3715", 422, "validation_failed"),
]


async def test_who_may_set_figures_where(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    before = await count_rows(session)
    table = Table()
    for who, scope, status, code in REFUSED:
        with table.case(f"{who} on {scope}"):
            response = await client.put(
                f"{API}/thresholds/{scope}/2020",
                json={"poverty_line": "4200.00"},
                headers=world.headers(who),
            )
            body = problem(response, status, code)
            if status == 422:
                assert [e["field"] for e in body["errors"]] == ["path.scope"]
    table.check()
    assert await count_rows(session) == before


# (year in the path, body, the field the 422 names)
INVALID: list[tuple[int, dict[str, Any], str]] = [
    (2025, {}, "body"),
    (2025, {"poverty_line": None, "monitoring_threshold": None}, "body"),
    (2025, {"poverty_line": "4200.001"}, "body.poverty_line"),
    # No poverty line after 2020 (DOMAIN.md): a later year has only a monitoring threshold.
    (2021, {"poverty_line": 4200, "monitoring_threshold": 6000}, "body.poverty_line"),
    (2025, {"poverty_line": -1}, "body.poverty_line"),
    (2025, {"monitoring_threshold": "lots"}, "body.monitoring_threshold"),
    (2025, {"poverty_line": 4200, "note": "x" * 201}, "body.note"),
    (2025, {"poverty_line": 4200, "scope": "national"}, "body.scope"),
    (2009, {"poverty_line": 4200}, "path.year"),
    (2101, {"poverty_line": 4200}, "path.year"),
]


async def test_invalid_figures_are_422(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    before = await count_rows(session)
    table = Table()
    for year, json, field in INVALID:
        with table.case(f"{year} {json!r:.60}"):
            response = await client.put(
                f"{API}/thresholds/{COUNTY_A}/{year}", json=json, headers=world.headers("admin_a")
            )
            problem(response, 422, "validation_failed", field)
    table.check()
    assert await count_rows(session) == before
