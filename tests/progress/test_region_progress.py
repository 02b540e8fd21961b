"""GET /api/v1/regions/{code}/progress: a region's figures, and each child region's.

ACCEPTANCE 2 of issue 6: the figures equal those computed independently from the raw rows of
the test (tests/progress/region_data.py, one household at a time in plain Python), for a
village, a town and a county; only the caller's regions are answered and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.base import utcnow
from app.households.models import Household
from app.regions.models import Region
from app.thresholds.models import PovertyThreshold
from app.thresholds.service import effective_thresholds
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    PEOPLE,
    TOWN_A1,
    TOWN_A2,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_region,
)
from tests.progress.region_data import (
    NATURAL_A1,
    VILLAGE_A5,
    Data,
    build,
    expected_progress,
    household_facts,
    resolve_thresholds,
)

API = "/api/v1"


def url(code: str) -> str:
    return f"{API}/regions/{code}/progress"


async def progress(client: httpx.AsyncClient, world: World, who: str, code: str) -> Any:
    response = await client.get(url(code), headers=world.headers(who))
    assert response.status_code == 200, response.text
    body = response.json()
    del body["as_of"]
    return body


# --- the figures -----------------------------------------------------------------------------

# (caller, region): every level, and the callers whose view of a village is the whole village.
CASES = [
    ("admin_a", VILLAGE_A1),  # with the households of its natural village
    ("admin_a", VILLAGE_A2),  # a poverty line of its own from 2024
    ("admin_a", VILLAGE_A3),  # its town's monitoring threshold for 2022
    ("admin_a", TOWN_A1),  # a village without households, one without population
    ("admin_a", TOWN_A2),
    ("admin_a", COUNTY_A),
    ("admin_b", COUNTY_B),
    ("officer_a1", VILLAGE_A1),
    ("secretary_a1", VILLAGE_A1),
]


@pytest.mark.parametrize("seed", [20261123, 7])
async def test_figures_equal_those_computed_from_the_rows(
    client: httpx.AsyncClient, world: World, session: AsyncSession, seed: int
) -> None:
    data = await build(session, world, seed=seed, now=utcnow())
    _check_the_data_set_exercises_every_figure(data)
    for who, code in CASES:
        expected = expected_progress(data, code, caller_regions=PEOPLE[who][1])
        assert await progress(client, world, who, code) == expected, (who, code)


def _check_the_data_set_exercises_every_figure(data: Data) -> None:
    """Guard against a vacuous comparison: the county has some of everything."""
    county = expected_progress(data, COUNTY_A, caller_regions=[COUNTY_A])
    by_status = county["households_by_status"]
    assert all(n for status, n in by_status.items() if status != "removed"), by_status
    assert all(county["households_by_attribute"].values())
    assert all(county["risk_flags"].values()), county["risk_flags"]
    assert all(county["measures"]["by_status"].values())
    assert 0 < county["exit_eligible"] < county["households_with_income"]
    # Every exit reason holds for some household still poor, and some meet the rule but are
    # not counted, not being poor.
    poor = [row for row in data.rows if row.household.status in ("new", "in_poverty", "returned")]
    reasons = {code for row in poor for code in household_facts(row, data).exit_reasons}
    assert reasons == {
        "no_snapshot",
        "income_below_line",
        "income_not_stable",
        "indicator_unknown",
        "indicator_not_ok",
        "education_not_secured",
        "medical_not_secured",
    }, reasons
    assert any(
        household_facts(row, data).eligible
        for row in data.rows
        if row.household.status in ("lifted", "lifted_no_support")
    )
    coverage = county["visit_coverage"]
    assert (
        0
        < coverage["households_visited_30d"]
        < coverage["households_visited_90d"]
        < county["households_total"]
    ), coverage
    assert county["people_in_poverty"] > 0
    removed = [row for row in data.rows if row.household.status == "removed"]
    assert any(row.visits or row.snapshots or row.measures for row in removed)


async def test_shape_of_a_county(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await build(session, world, seed=1, now=utcnow())
    body = await progress(client, world, "admin_a", COUNTY_A)
    assert (body["code"], body["name"], body["level"], body["level_name"]) == (
        COUNTY_A,
        "莘县",
        3,
        "county",
    )
    assert list(body["households_by_status"]) == [
        "new",
        "in_poverty",
        "lifted",
        "lifted_no_support",
        "returned",
        "removed",
    ]
    assert body["households_by_status"]["removed"] == 0  # never counted
    assert body["rural_population"] == 1286 + 1712 + 1594  # villages only: not the group's 100
    assert [(c["code"], c["level_name"]) for c in body["children"]] == [
        (TOWN_A1, "town"),
        (TOWN_A2, "town"),
    ]
    assert all("children" not in c for c in body["children"])
    for name in ("households_total", "people_in_poverty", "exit_eligible"):
        assert body[name] == sum(child[name] for child in body["children"])
    town = await progress(client, world, "admin_a", TOWN_A1)
    assert [(c["code"], c["name"]) for c in town["children"]] == [
        (VILLAGE_A1, "王庄村"),
        (VILLAGE_A2, "后屯村"),
        (VILLAGE_A5, "新庄村"),
    ]
    empty = town["children"][2]
    assert empty["households_total"] == 0
    assert empty["rural_population"] == 0
    assert empty["poverty_incidence"] is None and empty["below_threshold"] is None
    assert empty["income_change_avg"] is None
    assert empty["visit_coverage"]["visited_30d"] is None
    assert empty["measures"]["funds_planned"] == "0.00"
    village = await progress(client, world, "admin_a", VILLAGE_A5)
    assert village == {**empty, "children": []}
    # Without any line or threshold at all, income blocks no exit (as in the household
    # progress: an unknown line is no reason), and nobody is below a threshold.
    eligible = body["exit_eligible"]
    assert eligible > 0
    await session.execute(delete(PovertyThreshold))
    body = await progress(client, world, "admin_a", COUNTY_A)
    assert body["exit_eligible"] > eligible
    assert body["risk_flags"]["below_monitoring_threshold"] == 0


async def test_incidence_against_the_threshold(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    """1 poor person in 50 is 2%, not below the threshold; in 51, below."""
    region = await session.get(Region, VILLAGE_A2)
    assert region is not None
    world.households["a2"].status = "returned"  # its one member: the village's 1 poor person
    for population, below in ((50, False), (51, True), (0, None), (None, None)):
        region.rural_population = population
        await session.flush()
        body = await progress(client, world, "admin_a", VILLAGE_A2)
        assert body["people_in_poverty"] == 1
        assert body["rural_population"] == population
        assert body["poverty_incidence"] == (1 / population if population else None)
        assert body["incidence_threshold"] == 0.02
        assert body["below_threshold"] is below


# --- who may ask for what --------------------------------------------------------------------

OUTSIDE = [
    ("officer_a1", COUNTY_A),  # above their village: readable as a region, not its figures
    ("officer_a1", TOWN_A1),
    ("officer_a1", VILLAGE_A2),  # a neighbour
    ("officer_a2", VILLAGE_A1),
    ("secretary_a1", TOWN_A1),
    ("admin_b", COUNTY_A),  # another county
    ("admin_b", TOWN_A2),
    ("admin_b", VILLAGE_A1),
    ("admin_a", COUNTY_B),
    ("admin_a", VILLAGE_B1),
    ("admin_a", "371522109000"),  # a town that does not exist
    ("admin_a", "371522101299"),  # a village that does not exist
]


async def test_regions_outside_the_callers_are_404(client: httpx.AsyncClient, world: World) -> None:
    for who, code in OUTSIDE:
        response = await client.get(url(code), headers=world.headers(who))
        body = problem(response, 404, "region_not_found")
        assert code in body["detail"], (who, code)


async def test_refusals(client: httpx.AsyncClient, world: World, session: AsyncSession) -> None:
    problem(await client.get(url(VILLAGE_A1)), 401, "not_authenticated")
    await make_region(session, NATURAL_A1, "一组")
    # A province, a city, a natural village: no figures at those levels.
    for code in ("370000000000", "371500000000", NATURAL_A1):
        response = await client.get(url(code), headers=world.headers("admin_a"))
        problem(response, 422, "validation_failed", field="path.code")
    for code in ("37152200000", "371522000000x", "３７１５２２０００００００"):
        response = await client.get(url(code), headers=world.headers("admin_a"))
        problem(response, 422, "validation_failed", field="path.code")
    # Twelve digits, but no division (found by the OpenAPI fuzzer: they were 500s).
    for code in ("000000000000", "371522000001"):
        response = await client.get(url(code), headers=world.headers("admin_a"))
        problem(response, 422, "validation_failed", field="path.code")
        response = await client.get(
            "/api/v1/exports/households.csv",
            params={"region": code},
            headers=world.headers("admin_a"),
        )
        problem(response, 422, "validation_failed", field="query.region")


# --- cost ------------------------------------------------------------------------------------


@contextmanager
def counted_selects(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_queries_do_not_grow_with_the_children(
    client: httpx.AsyncClient, world: World, session: AsyncSession, engine: AsyncEngine
) -> None:
    await build(session, world, seed=1, now=utcnow())
    with counted_selects(engine) as village:
        await progress(client, world, "admin_a", VILLAGE_A3)
    # The caller, the region, the threshold scopes, the village's thresholds, its population,
    # the figures; the excluded income items, the cases, the alerts, the clearing rule.
    assert len(village) == 10, "\n\n".join(village)
    with counted_selects(engine) as before:
        await progress(client, world, "admin_a", COUNTY_A)
    # The same, with the thresholds of the county and of each division in it that has rows
    # of its own (4: towns A1 and A2, village A2, the natural village of A1).
    assert len(before) == 14, "\n\n".join(before)
    for town in range(3, 9):
        town_code = f"371522{100 + town:03d}000"
        await make_region(session, town_code, f"镇{town}")
        await make_region(session, f"{town_code[:9]}201", f"村{town}", population=500)
        session.add(
            Household(
                number=f"{town_code[:9]}2010001",
                village_code=f"{town_code[:9]}201",
                head_name="户主",
                attribute="general",
                status="in_poverty",
                main_cause="illness",
                identified_year=2014,
            )
        )
    await session.flush()
    with counted_selects(engine) as after:
        body = await progress(client, world, "admin_a", COUNTY_A)
    assert len(body["children"]) == 2 + 6
    assert len(after) == len(before)


async def test_thresholds_of_the_data_set(session: AsyncSession, world: World) -> None:
    """The test's own reading of the threshold rows agrees with the thresholds service, and the
    data set has rows of several scopes that matter: the town's 2022 row, the county's of 2023
    over it, the county's and the village's own lines, the natural village's own threshold; and
    no poverty line after 2020, not even a county's own row for a later year."""
    data = await build(session, world, seed=1, now=utcnow())
    assert resolve_thresholds(data.thresholds, VILLAGE_A3, 2022) == (None, 800_000)
    assert resolve_thresholds(data.thresholds, VILLAGE_A3, 2023) == (None, 750_000)
    assert resolve_thresholds(data.thresholds, VILLAGE_A2, 2025) == (None, 750_000)
    assert resolve_thresholds(data.thresholds, NATURAL_A1, 2023) == (None, 900_000)
    assert resolve_thresholds(data.thresholds, VILLAGE_A1, 2019) == (330_000, None)
    assert resolve_thresholds(data.thresholds, VILLAGE_A2, 2020) == (420_000, None)
    assert resolve_thresholds(data.thresholds, VILLAGE_A1, 2020) == (400_000, None)
    assert resolve_thresholds(data.thresholds, VILLAGE_A1, 2021) == (None, 650_000)
    years = range(2008, 2028)
    for village in sorted({row.household.village_code for row in data.rows}):
        effective = await effective_thresholds(session, region_code=village, years=years)
        for year in years:
            found = (effective[year].poverty_line, effective[year].monitoring_threshold)
            assert resolve_thresholds(data.thresholds, village, year) == found, (village, year)
