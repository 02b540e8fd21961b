"""/api/v1/regions: reading within reach, filters, pages, and a county admin adding divisions."""

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.regions.models import Region
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    TOWN_A1,
    TOWN_A2,
    TOWN_B1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_region,
)

URL = "/api/v1/regions"
PROVINCE = "370000000000"
CITY = "371500000000"


async def codes_of(client: httpx.AsyncClient, world: World, who: str, **params: Any) -> list[str]:
    response = await client.get(URL, params=params, headers=world.headers(who))
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [r["code"] for r in response.json()["items"]]


async def count_regions(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Region)) or 0


# --- reading ---------------------------------------------------------------------------------


async def test_county_admin_lists_own_county_and_what_lies_above(
    client: httpx.AsyncClient, world: World
) -> None:
    codes = await codes_of(client, world, "admin_a")
    assert codes == [
        PROVINCE,
        CITY,
        COUNTY_A,
        TOWN_A1,
        VILLAGE_A1,
        VILLAGE_A2,
        TOWN_A2,
        VILLAGE_A3,
    ]


async def test_filter_by_parent(client: httpx.AsyncClient, world: World) -> None:
    assert await codes_of(client, world, "admin_a", parent=TOWN_A1) == [VILLAGE_A1, VILLAGE_A2]
    assert await codes_of(client, world, "admin_a", parent=COUNTY_A) == [TOWN_A1, TOWN_A2]
    # Another county's children are out of reach even when asked for by parent.
    assert await codes_of(client, world, "admin_a", parent=TOWN_B1) == []
    assert await codes_of(client, world, "admin_b", parent=TOWN_B1) == [VILLAGE_B1]


async def test_filter_by_level(client: httpx.AsyncClient, world: World) -> None:
    assert await codes_of(client, world, "admin_a", level=5) == [
        VILLAGE_A1,
        VILLAGE_A2,
        VILLAGE_A3,
    ]
    assert await codes_of(client, world, "admin_b", level=4) == [TOWN_B1]
    assert await codes_of(client, world, "admin_a", level=3, parent=CITY) == [COUNTY_A]


async def test_a_level_out_of_range_is_a_problem(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(URL, params={"level": 7}, headers=world.headers("admin_a"))
    problem(response, 422, "validation_failed", "query.level")


async def test_pages_follow_next_cursor(client: httpx.AsyncClient, world: World) -> None:
    everything = await codes_of(client, world, "admin_a")
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        response = await client.get(URL, params=params, headers=world.headers("admin_a"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 3
        seen += [r["code"] for r in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == everything
    assert pages == 3  # 8 regions by 3


async def test_a_bad_cursor_is_a_problem(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(
        URL, params={"cursor": "nonsense"}, headers=world.headers("admin_a")
    )
    problem(response, 422, "validation_failed", "query.cursor")


async def test_officer_sees_own_village_below_and_above_but_no_other_village(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await make_region(session, VILLAGE_A1 + "-01", "一组")
    await make_region(session, VILLAGE_A1 + "-02", "二组")
    await make_region(session, VILLAGE_A2 + "-01", "后屯一组")
    codes = await codes_of(client, world, "officer_a1")
    assert codes == [
        PROVINCE,
        CITY,
        COUNTY_A,
        TOWN_A1,
        VILLAGE_A1,
        VILLAGE_A1 + "-01",
        VILLAGE_A1 + "-02",
    ]
    assert await codes_of(client, world, "officer_a1", parent=TOWN_A1) == [VILLAGE_A1]
    assert await codes_of(client, world, "officer_a1", level=6) == [
        VILLAGE_A1 + "-01",
        VILLAGE_A1 + "-02",
    ]


async def test_get_region(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"{URL}/{VILLAGE_A1}", headers=world.headers("officer_a1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == VILLAGE_A1
    assert body["name"] == "王庄村"
    assert body["level"] == 5
    assert body["level_name"] == "village"
    assert body["parent_code"] == TOWN_A1
    assert body["rural_population"] == 1286
    # An ancestor is visible for context.
    response = await client.get(f"{URL}/{COUNTY_A}", headers=world.headers("officer_a1"))
    assert response.status_code == 200, response.text
    assert response.json()["level_name"] == "county"


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("officer_a1", VILLAGE_A2),  # another village of the same town
        ("officer_a1", TOWN_A2),
        ("officer_a1", VILLAGE_B1),
        ("admin_a", VILLAGE_B1),  # another county
        ("admin_a", "371522109201"),  # does not exist
    ],
)
async def test_get_region_out_of_reach_is_not_found(
    client: httpx.AsyncClient, world: World, who: str, code: str
) -> None:
    response = await client.get(f"{URL}/{code}", headers=world.headers(who))
    problem(response, 404, "region_not_found")


async def test_reading_needs_a_token(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(URL)
    problem(response, 401, "not_authenticated")
    assert "WWW-Authenticate" in response.headers


# --- creating --------------------------------------------------------------------------------


async def test_county_admin_creates_a_village_inside_the_county(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    data = {"code": "371522101203", "name": "李庄村", "rural_population": 840}
    response = await client.post(URL, json=data, headers=world.headers("admin_a"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["code"] == "371522101203"
    assert body["level"] == 5
    assert body["parent_code"] == TOWN_A1  # the nearest existing division above
    assert body["rural_population"] == 840
    region = await session.get(Region, "371522101203")
    assert region is not None
    assert region.name == "李庄村"
    response = await client.get(f"{URL}/371522101203", headers=world.headers("admin_a"))
    assert response.status_code == 200


async def test_county_admin_creates_a_natural_village(
    client: httpx.AsyncClient, world: World
) -> None:
    data = {"code": VILLAGE_A1 + "-05", "name": "五组", "parent_code": VILLAGE_A1}
    response = await client.post(URL, json=data, headers=world.headers("admin_a"))
    assert response.status_code == 201, response.text
    assert response.json()["level_name"] == "natural_village"
    assert response.json()["parent_code"] == VILLAGE_A1


@pytest.mark.parametrize(
    "code",
    [
        "371523101202",  # a village of county B
        "371523102000",
        COUNTY_A,  # the county itself
        "371500000000",
    ],
)
async def test_outside_the_county_is_forbidden(
    client: httpx.AsyncClient, session: AsyncSession, world: World, code: str
) -> None:
    before = await count_regions(session)
    response = await client.post(
        URL, json={"code": code, "name": "外村"}, headers=world.headers("admin_a")
    )
    problem(response, 403, "forbidden")
    assert await count_regions(session) == before


async def test_an_existing_code_is_a_conflict(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        URL, json={"code": TOWN_A1, "name": "燕店镇"}, headers=world.headers("admin_a")
    )
    problem(response, 409, "region_exists")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"code": "37152210120x", "name": "坏村"}, "body.code"),
        ({"code": "371522000201", "name": "坏村"}, "body.code"),  # village without town digits
        ({"code": "371522101203", "name": ""}, "body.name"),
        (
            {"code": "371522101203", "name": "李庄村", "rural_population": -1},
            "body.rural_population",
        ),
        ({"code": "371522101203", "name": "李庄村", "parent_code": "12"}, "body.parent_code"),
        # A division that is not above the code: another town, a sibling village, a child.
        ({"code": "371522101203", "name": "李庄村", "parent_code": TOWN_A2}, "body.parent_code"),
        ({"code": "371522101203", "name": "李庄村", "parent_code": VILLAGE_A1}, "body.parent_code"),
        ({"code": TOWN_A1 + "-1", "name": "x", "parent_code": VILLAGE_A1}, "body.code"),
        # A natural village lies under its own village, never directly under a town.
        ({"code": VILLAGE_A1 + "-07", "name": "七组", "parent_code": TOWN_A1}, "body.parent_code"),
        ({"code": "371522101209-01", "name": "一组"}, "body.parent_code"),  # no such village
        # Above the code, but unknown.
        (
            {"code": "371522103201", "name": "新村", "parent_code": "371522103000"},
            "body.parent_code",
        ),
        ({"code": "371522101203", "name": "李庄村", "level": 5}, "body.level"),
    ],
)
async def test_invalid_regions_are_problems_naming_the_field(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    data: dict[str, Any],
    field: str,
) -> None:
    before = await count_regions(session)
    response = await client.post(URL, json=data, headers=world.headers("admin_a"))
    problem(response, 422, "validation_failed", field)
    assert await count_regions(session) == before


@pytest.mark.parametrize("who", ["officer_a1", "secretary_a1"])
async def test_only_a_county_admin_creates_regions(
    client: httpx.AsyncClient, session: AsyncSession, world: World, who: str
) -> None:
    before = await count_regions(session)
    response = await client.post(
        URL, json={"code": VILLAGE_A1 + "-09", "name": "九组"}, headers=world.headers(who)
    )
    problem(response, 403, "forbidden")
    assert await count_regions(session) == before
