"""Households beyond the register: ordinary farm households (一般农户) next to registered ones.

An ordinary household has members, ID numbers, a phone and a village like any other, and none
of the register's fields (status, attribute, causes, identification standard, years); its
origin never changes.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.households.models import Household, HouseholdChange
from app.quality.vocabulary import IssueKind
from tests.assertions import problem
from tests.builders import (
    VILLAGE_A1,
    VILLAGE_A2,
    World,
    make_household,
    make_id_number,
)
from tests.sync.helpers import batch, household_edit, phone_headers, send

URL = "/api/v1/households"
NUMBER = "3715221012010102"
HEAD_ID = make_id_number(502, "19720304")


def ordinary(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": NUMBER,
        "village_code": VILLAGE_A1,
        "group_name": "二组",
        "head_name": "孙立新",
        "phone": "13905357788",
        "origin": "ordinary",
        "members": [
            {"name": "孙立新", "id_number": HEAD_ID, "relation": "head"},
            {"name": "孙小梅", "relation": "child", "in_school": True},
        ],
    }
    body.update(changes)
    return body


async def household_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Household)) or 0


async def test_an_ordinary_household_has_members_and_none_of_the_register(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    response = await client.post(URL, json=ordinary(), headers=world.headers("admin_a"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["origin"] == "ordinary"
    for name in ("status", "attribute", "main_cause", "identification_standard"):
        assert body[name] is None, name
    assert (body["identified_year"], body["planned_exit_year"], body["exit_year"]) == (None,) * 3
    assert body["other_causes"] == []
    assert body["household_size"] == 2
    assert body["phone"] == "13905357788"
    assert {m["id_number"] for m in body["members"]} == {HEAD_ID, None}
    assert body["flags"] == ["member_without_id_number"]

    # Read back (masked for the secretary) and listed like any other.
    read = await client.get(f"{URL}/{body['id']}", headers=world.headers("secretary_a1"))
    assert read.status_code == 200, read.text
    assert read.json()["origin"] == "ordinary" and read.json()["status"] is None
    assert read.json()["phone"] == "139****7788"
    # The history records the origin it was created with, and no status.
    (change,) = await session.scalars(
        select(HouseholdChange).where(HouseholdChange.household_id == uuid.UUID(body["id"]))
    )
    assert change.changes == {"origin": [None, "ordinary"]}
    assert (change.status_from, change.status_to) == (None, None)


async def test_a_registered_household_is_the_default_and_keeps_its_status(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {
        **ordinary(number="3715221012010103", members=[]),
        "attribute": "general",
        "main_cause": "illness",
        "identified_year": 2016,
    }
    del body["origin"]
    response = await client.post(URL, json=body, headers=world.headers("admin_a"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["origin"], created["status"]) == ("registered", "new")
    assert created["identification_standard"] == "national"


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"status": "in_poverty"}, ["body.status"]),
        ({"status": "new"}, ["body.status"]),
        ({"attribute": "dibao", "main_cause": "illness"}, ["body.attribute", "body.main_cause"]),
        ({"other_causes": ["disaster"]}, ["body.other_causes"]),
        ({"identified_year": 2015, "exit_year": 2019}, ["body.identified_year", "body.exit_year"]),
        ({"identification_standard": "national"}, ["body.identification_standard"]),
        # A registered household needs the register's fields (status defaults to new).
        (
            {"origin": "registered"},
            ["body.attribute", "body.main_cause", "body.identified_year"],
        ),
        ({"origin": "poor"}, ["body.origin"]),
    ],
)
async def test_register_fields_follow_the_origin(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    changes: dict[str, Any],
    fields: list[str],
) -> None:
    before = await household_count(session)
    response = await client.post(URL, json=ordinary(**changes), headers=world.headers("admin_a"))
    body = problem(response, 422, "validation_failed")
    assert sorted(e["field"] for e in body["errors"]) == sorted(fields), body
    assert await household_count(session) == before


@pytest.fixture
async def farm(session: AsyncSession, world: World) -> Household:
    household = await make_household(
        session,
        village=VILLAGE_A1,
        number="3715221012010101",
        head_name="孙立新",
        origin="ordinary",
        members=[{"name": "孙立新", "id_number": HEAD_ID, "relation": "head"}],
    )
    await session.commit()
    return household


async def numbers(client: httpx.AsyncClient, world: World, **params: Any) -> list[str]:
    response = await client.get(URL, params=params, headers=world.headers("admin_a"))
    assert response.status_code == 200, response.text
    return [h["number"] for h in response.json()["items"]]


async def test_filter_by_origin(client: httpx.AsyncClient, world: World, farm: Household) -> None:
    registered = ["3715221012010001", "3715221012020001"]
    assert await numbers(client, world, origin="ordinary") == [farm.number]
    assert await numbers(client, world, origin="registered") == registered
    assert await numbers(client, world) == [registered[0], farm.number, registered[1]]
    # An ordinary household has no status: a status filter never finds it.
    assert await numbers(client, world, status="in_poverty") == registered
    response = await client.get(URL, params={"origin": "poor"}, headers=world.headers("admin_a"))
    problem(response, 422, "validation_failed", "query.origin")


async def patch(
    client: httpx.AsyncClient, world: World, household_id: Any, body: dict[str, Any], **kw: Any
) -> httpx.Response:
    who = kw.get("who", "admin_a")
    version = kw.get("version", 1)
    return await client.patch(
        f"{URL}/{household_id}",
        json=body,
        headers={**world.headers(who), "If-Match": f'"v{version}"'},
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "in_poverty"}, "body.status"),
        ({"attribute": "general"}, "body.attribute"),
        ({"main_cause": "illness"}, "body.main_cause"),
        ({"other_causes": ["illness"]}, "body.other_causes"),
        ({"identified_year": 2020}, "body.identified_year"),
        ({"planned_exit_year": 2027}, "body.planned_exit_year"),
        ({"identification_standard": "provincial"}, "body.identification_standard"),
        ({"origin": "registered"}, "body.origin"),
        ({"status": "lifted", "override_reason": "已核实"}, "body.status"),
    ],
)
async def test_an_ordinary_household_takes_no_register_field_and_keeps_its_origin(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    farm: Household,
    body: dict[str, Any],
    field: str,
) -> None:
    farm_id = farm.id
    problem(await patch(client, world, farm_id, body), 422, "validation_failed", field)
    assert await session.scalar(select(Household.version).where(Household.id == farm_id)) == 1


async def test_an_ordinary_household_is_edited_like_any_other(
    client: httpx.AsyncClient, world: World, farm: Household
) -> None:
    # The register's fields as null (what it has), its own origin: accepted, nothing changes.
    same = {"status": None, "attribute": None, "other_causes": [], "origin": "ordinary"}
    response = await patch(client, world, farm.id, same)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v1"'
    response = await patch(client, world, farm.id, {"phone": "13905350000", "group_name": "三组"})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.json()["status"] is None


async def test_origin_of_a_registered_household_cannot_change(
    client: httpx.AsyncClient, world: World
) -> None:
    a1 = world.households["a1"].id
    problem(
        await patch(client, world, a1, {"origin": "ordinary"}),
        422,
        "validation_failed",
        "body.origin",
    )
    response = await patch(client, world, a1, {"origin": "registered", "group_name": "一组"})
    assert response.status_code == 200, response.text
    assert response.json()["origin"] == "registered"


async def test_a_batch_edit_of_an_ordinary_household_is_checked_the_same(
    client: httpx.AsyncClient, session: AsyncSession, world: World, farm: Household
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    body = batch(
        [
            household_edit(farm.id, 1, {"status": "in_poverty"}),
            household_edit(farm.id, 1, {"phone": "13905351111"}),
        ]
    )
    response = await send(client, body, headers)
    assert response.status_code == 200, response.text
    rejected, updated = response.json()["results"]
    assert rejected["status"] == "rejected", rejected
    assert [e["field"] for e in rejected["errors"]] == ["records.0.changes.status"]
    assert updated["status"] == "updated", updated


async def test_the_feed_and_quality_checks_see_ordinary_households(
    client: httpx.AsyncClient, session: AsyncSession, world: World, farm: Household
) -> None:
    """An ordinary household is checked for data quality like any other (its member without
    an ID number is an issue), and no check trips on its null status or cause."""
    await make_household(
        session,
        village=VILLAGE_A2,
        origin="ordinary",
        members=[{"name": "钱多", "id_number": None, "relation": "head"}],
    )
    await session.commit()
    response = await client.get(
        "/api/v1/quality/issues",
        params={"region": VILLAGE_A2, "limit": 100},
        headers=world.headers("admin_a"),
    )
    assert response.status_code == 200, response.text
    kinds = {(i["kind"], i["household_id"]) for i in response.json()["items"]}
    ordinary_ids = {
        str(h)
        for h in await session.scalars(
            select(Household.id).where(
                Household.village_code == VILLAGE_A2, Household.origin == "ordinary"
            )
        )
    }
    (ordinary_id,) = ordinary_ids
    assert (IssueKind.id_number_missing.value, ordinary_id) in kinds
    causes = {IssueKind.cause_contradicts_members.value, IssueKind.cause_repeated.value}
    assert not {(kind, h) for kind, h in kinds if h == ordinary_id and kind in causes}


async def test_progress_answers_for_an_ordinary_household(
    client: httpx.AsyncClient, world: World, farm: Household
) -> None:
    """Progress reads status and attribute: an ordinary household's nulls must not break it."""
    headers = world.headers("admin_a")
    response = await client.get(f"{URL}/{farm.id}/progress", headers=headers)
    assert response.status_code == 200, response.text
    response = await client.get(f"/api/v1/regions/{VILLAGE_A1}/progress", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["households_total"] == 2
