"""/api/v1/households/{id}/members: the members sub-resource, guarded by the household's ETag."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.households import id_numbers
from app.households.models import Household, Member
from tests.assertions import problem
from tests.builders import ID_HEAD_A1, ID_SPOUSE_A1, World, make_id_number

NEWBORN = {"name": "张小雨", "relation": "child", "added_reason": "newborn"}


@pytest.fixture
def a1(world: World) -> str:
    """URL of household a1 (read now: a failing request expires the world's objects)."""
    return f"/api/v1/households/{world.households['a1'].id}"


@pytest.fixture
def a1_id(world: World) -> uuid.UUID:
    return world.households["a1"].id


@pytest.fixture
def a2(world: World) -> str:
    return f"/api/v1/households/{world.households['a2'].id}"


@pytest.fixture
async def members_a1(session: AsyncSession, a1_id: uuid.UUID) -> dict[str, uuid.UUID]:
    rows = await session.execute(select(Member.name, Member.id).where(Member.household_id == a1_id))
    return {name: id_ for name, id_ in rows.all()}


def write_headers(world: World, who: str, etag: str | None) -> dict[str, str]:
    headers = world.headers(who)
    if etag is not None:
        headers["If-Match"] = etag
    return headers


async def version_of(session: AsyncSession, household_id: uuid.UUID) -> int:
    version = await session.scalar(select(Household.version).where(Household.id == household_id))
    assert version is not None
    return version


async def member_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Member)) or 0


async def search(client: httpx.AsyncClient, world: World, id_number: str) -> list[str]:
    response = await client.post(
        "/api/v1/households/search", json={"id_number": id_number}, headers=world.headers("admin_a")
    )
    assert response.status_code == 200, response.text
    return [h["number"] for h in response.json()["items"]]


# --- reading -------------------------------------------------------------------------------


async def test_list_members(client: httpx.AsyncClient, world: World, a1: str) -> None:
    response = await client.get(f"{a1}/members", headers=world.headers("officer_a1"))
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v1"'
    by_name = {m["name"]: m for m in response.json()}
    assert set(by_name) == {"张建国", "李秀英", "张小龙"}
    assert by_name["张建国"]["id_number"] == ID_HEAD_A1
    assert by_name["张建国"]["relation"] == "head"
    assert by_name["张建国"]["health"] == "chronic"
    assert by_name["张建国"]["birth_date"] == "1949-12-31"
    assert by_name["张小龙"]["id_number_missing"] is True
    # Masked for a caller without pii:read.
    response = await client.get(f"{a1}/members", headers=world.headers("secretary_a1"))
    masked = {m["name"]: m for m in response.json()}
    assert masked["李秀英"]["id_number"] == id_numbers.mask(ID_SPOUSE_A1)


async def test_get_member(
    client: httpx.AsyncClient, world: World, a1: str, members_a1: dict[str, uuid.UUID]
) -> None:
    response = await client.get(
        f"{a1}/members/{members_a1['李秀英']}", headers=world.headers("officer_a1")
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v1"'
    assert response.json()["id"] == str(members_a1["李秀英"])
    assert response.json()["id_number"] == ID_SPOUSE_A1


async def test_members_out_of_reach_are_not_found(
    client: httpx.AsyncClient,
    world: World,
    a1: str,
    a2: str,
    members_a1: dict[str, uuid.UUID],
) -> None:
    member = members_a1["李秀英"]
    response = await client.get(f"{a1}/members", headers=world.headers("officer_a2"))
    problem(response, 404, "household_not_found")
    response = await client.get(f"{a1}/members/{member}", headers=world.headers("admin_b"))
    problem(response, 404, "household_not_found")
    # A member asked for under another household (that the caller may see).
    response = await client.get(f"{a2}/members/{member}", headers=world.headers("admin_a"))
    problem(response, 404, "member_not_found")
    response = await client.get(f"{a1}/members/{uuid.uuid4()}", headers=world.headers("admin_a"))
    problem(response, 404, "member_not_found")


# --- adding --------------------------------------------------------------------------------


async def test_add_a_member(
    client: httpx.AsyncClient, session: AsyncSession, world: World, a1: str, a1_id: uuid.UUID
) -> None:
    number = make_id_number(402, "20230405")
    data = {**NEWBORN, "id_number": number[:17] + number[17].lower()}
    response = await client.post(
        f"{a1}/members", json=data, headers=write_headers(world, "officer_a1", '"v1"')
    )
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"v2"'
    body = response.json()
    assert response.headers["Location"] == f"{a1}/members/{body['id']}"
    assert body["id_number"] == number
    assert body["birth_date"] == "2023-04-05"
    assert body["added_reason"] == "newborn"
    assert await version_of(session, a1_id) == 2

    household = await client.get(a1, headers=world.headers("officer_a1"))
    assert household.headers["ETag"] == '"v2"'
    assert household.json()["household_size"] == 4
    assert await search(client, world, number) == ["3715221012010001"]
    member = await client.get(response.headers["Location"], headers=world.headers("officer_a1"))
    assert member.status_code == 200
    assert member.json()["name"] == "张小雨"


async def test_add_a_member_without_an_id_number(
    client: httpx.AsyncClient, world: World, a1: str
) -> None:
    response = await client.post(
        f"{a1}/members", json=NEWBORN, headers=write_headers(world, "secretary_a1", '"v1"')
    )
    assert response.status_code == 201, response.text
    assert response.json()["id_number_missing"] is True


@pytest.mark.parametrize(
    ("etag", "status", "code"),
    [
        (None, 428, "precondition_required"),
        ("", 428, "precondition_required"),
        ('"v0"', 412, "precondition_failed"),
        ('W/"v1"', 412, "precondition_failed"),
    ],
)
async def test_add_a_member_needs_the_current_etag(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    a1_id: uuid.UUID,
    etag: str | None,
    status: int,
    code: str,
) -> None:
    before = await member_count(session)
    response = await client.post(
        f"{a1}/members", json=NEWBORN, headers=write_headers(world, "officer_a1", etag)
    )
    body = problem(response, status, code)
    assert body["current_etag"] == '"v1"'
    assert await member_count(session) == before
    assert await version_of(session, a1_id) == 1


@pytest.mark.parametrize(
    ("data", "status", "code", "field"),
    [
        ({"name": "张二", "relation": "head"}, 422, "validation_failed", "body.relation"),
        ({"name": "张二", "relation": "cousin"}, 422, "validation_failed", "body.relation"),
        ({"relation": "child"}, 422, "validation_failed", "body.name"),
        (
            {"name": "张二", "relation": "child", "id_number": "110105194912310021"},
            422,
            "validation_failed",
            "body.id_number",
        ),
        (
            {"name": "张二", "relation": "child", "id_number": ID_SPOUSE_A1},
            409,
            "id_number_registered",
            "body.id_number",
        ),
        (
            # Registered to a current member of another household, in another county.
            {
                "name": "张二",
                "relation": "child",
                "id_number": make_id_number(21, "19700512", "371523"),
            },
            409,
            "id_number_registered",
            "body.id_number",
        ),
        (
            {**NEWBORN, "household_id": str(uuid.uuid4())},
            422,
            "validation_failed",
            "body.household_id",
        ),
    ],
)
async def test_bad_members_are_refused_and_nothing_changes(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    a1_id: uuid.UUID,
    data: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    before = await member_count(session)
    response = await client.post(
        f"{a1}/members", json=data, headers=write_headers(world, "admin_a", '"v1"')
    )
    problem(response, status, code, field)
    assert await member_count(session) == before
    assert await version_of(session, a1_id) == 1


async def test_adding_to_another_villages_household_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession, world: World, a1: str
) -> None:
    before = await member_count(session)
    response = await client.post(
        f"{a1}/members", json=NEWBORN, headers=write_headers(world, "officer_a2", '"v1"')
    )
    problem(response, 404, "household_not_found")
    assert await member_count(session) == before


# --- changing ------------------------------------------------------------------------------


async def test_changing_the_id_number_rehashes_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    members_a1: dict[str, uuid.UUID],
) -> None:
    spouse = members_a1["李秀英"]
    new_number = make_id_number(404, "19520817")
    assert await search(client, world, ID_SPOUSE_A1) == ["3715221012010001"]
    response = await client.patch(
        f"{a1}/members/{spouse}",
        json={"id_number": new_number, "health": "serious"},
        headers=write_headers(world, "officer_a1", '"v1"'),
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v2"'
    body = response.json()
    assert (body["id_number"], body["birth_date"], body["health"]) == (
        new_number,
        "1952-08-17",
        "serious",
    )
    assert body["relation"] == "spouse"  # untouched
    assert await search(client, world, new_number) == ["3715221012010001"]
    assert await search(client, world, ID_SPOUSE_A1) == []
    stored = await session.scalar(select(Member.id_number_hash).where(Member.id == spouse))
    assert stored == id_numbers.search_hash(new_number, key=get_settings().pii_hash_key)

    # Clearing it: searchable no more, and the household is flagged.
    response = await client.patch(
        f"{a1}/members/{spouse}",
        json={"id_number": None},
        headers=write_headers(world, "officer_a1", '"v2"'),
    )
    assert response.status_code == 200, response.text
    assert response.json()["id_number_missing"] is True
    assert response.json()["birth_date"] is None
    assert await search(client, world, new_number) == []


async def test_a_member_keeps_their_own_id_number(
    client: httpx.AsyncClient, world: World, a1: str, members_a1: dict[str, uuid.UUID]
) -> None:
    response = await client.patch(
        f"{a1}/members/{members_a1['李秀英']}",
        json={"id_number": ID_SPOUSE_A1, "medical_insurance": True},
        headers=write_headers(world, "officer_a1", '"v1"'),
    )
    assert response.status_code == 200, response.text
    assert response.json()["medical_insurance"] is True


@pytest.mark.parametrize(
    ("who", "data", "status", "code", "field"),
    [
        ("李秀英", {"relation": "head"}, 422, "validation_failed", "body.relation"),
        ("李秀英", {"id_number": ID_HEAD_A1}, 409, "id_number_registered", "body.id_number"),
        ("李秀英", {"id_number": "4405241880010100"}, 422, "validation_failed", "body.id_number"),
        ("李秀英", {"name": None}, 422, "validation_failed", "body.name"),
        ("李秀英", {"relation": None}, 422, "validation_failed", "body.relation"),
        ("李秀英", {"in_school": "yes please"}, 422, "validation_failed", "body.in_school"),
        ("李秀英", {"added_reason": "newborn"}, 422, "validation_failed", "body.added_reason"),
        ("张小龙", {"health": "fine"}, 422, "validation_failed", "body.health"),
    ],
)
async def test_bad_member_changes_are_refused_and_nothing_changes(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    a1_id: uuid.UUID,
    members_a1: dict[str, uuid.UUID],
    who: str,
    data: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    member_id = members_a1[who]
    response = await client.patch(
        f"{a1}/members/{member_id}", json=data, headers=write_headers(world, "admin_a", '"v1"')
    )
    problem(response, status, code, field)
    assert await version_of(session, a1_id) == 1
    row = (
        await session.execute(
            select(Member.name, Member.relation, Member.id_number).where(Member.id == member_id)
        )
    ).one()
    assert row.relation in ("spouse", "child")
    assert row.name == who


async def test_the_head_may_stay_the_head(
    client: httpx.AsyncClient, world: World, a1: str, members_a1: dict[str, uuid.UUID]
) -> None:
    response = await client.patch(
        f"{a1}/members/{members_a1['张建国']}",
        json={"relation": "head", "labour": "weak"},
        headers=write_headers(world, "officer_a1", '"v1"'),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("etag", "status", "code"),
    [(None, 428, "precondition_required"), ('"v2"', 412, "precondition_failed")],
)
async def test_changing_a_member_needs_the_current_etag(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    a1_id: uuid.UUID,
    members_a1: dict[str, uuid.UUID],
    etag: str | None,
    status: int,
    code: str,
) -> None:
    member_id = members_a1["李秀英"]
    response = await client.patch(
        f"{a1}/members/{member_id}",
        json={"health": "serious"},
        headers=write_headers(world, "officer_a1", etag),
    )
    problem(response, status, code)
    assert await version_of(session, a1_id) == 1
    assert await session.scalar(select(Member.health).where(Member.id == member_id)) == "healthy"


# --- removing ------------------------------------------------------------------------------


async def test_remove_a_member(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    a2: str,
    a1_id: uuid.UUID,
    members_a1: dict[str, uuid.UUID],
) -> None:
    spouse = members_a1["李秀英"]
    response = await client.post(
        f"{a1}/members/{spouse}/removal",
        json={"reason": "death"},
        headers=write_headers(world, "officer_a1", '"v1"'),
    )
    assert response.status_code == 204, response.text
    assert response.headers["ETag"] == '"v2"'
    assert response.content == b""
    assert await version_of(session, a1_id) == 2

    listed = await client.get(f"{a1}/members", headers=world.headers("officer_a1"))
    assert listed.headers["ETag"] == '"v2"'
    assert {m["name"] for m in listed.json()} == {"张建国", "张小龙"}
    household = (await client.get(a1, headers=world.headers("officer_a1"))).json()
    assert household["household_size"] == 2
    assert household["version"] == 2
    response = await client.get(f"{a1}/members/{spouse}", headers=world.headers("officer_a1"))
    problem(response, 404, "member_not_found")
    assert await search(client, world, ID_SPOUSE_A1) == []
    # The record is kept, with the reason.
    row = (
        await session.execute(
            select(Member.removed_at, Member.removed_reason).where(Member.id == spouse)
        )
    ).one()
    assert row.removed_at is not None
    assert row.removed_reason == "death"
    # Removing again: no longer a current member.
    response = await client.post(
        f"{a1}/members/{spouse}/removal",
        json={"reason": "death"},
        headers=write_headers(world, "officer_a1", '"v2"'),
    )
    problem(response, 404, "member_not_found")
    # Their ID number is free again.
    response = await client.post(
        f"{a2}/members",
        json={"name": "李秀英", "relation": "spouse", "id_number": ID_SPOUSE_A1},
        headers=write_headers(world, "admin_a", '"v1"'),
    )
    assert response.status_code == 201, response.text
    assert await search(client, world, ID_SPOUSE_A1) == ["3715221012020001"]


@pytest.mark.parametrize(
    ("data", "etag", "status", "code", "field"),
    [
        ({}, '"v1"', 422, "validation_failed", "body.reason"),
        ({"reason": "bored"}, '"v1"', 422, "validation_failed", "body.reason"),
        ({"reason": "death"}, None, 428, "precondition_required", None),
        ({"reason": "death"}, '"v9"', 412, "precondition_failed", None),
    ],
)
async def test_removal_needs_a_reason_and_the_current_etag(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    a1_id: uuid.UUID,
    members_a1: dict[str, uuid.UUID],
    data: dict[str, Any],
    etag: str | None,
    status: int,
    code: str,
    field: str | None,
) -> None:
    member_id = members_a1["张小龙"]
    response = await client.post(
        f"{a1}/members/{member_id}/removal",
        json=data,
        headers=write_headers(world, "officer_a1", etag),
    )
    problem(response, status, code, field)
    assert await version_of(session, a1_id) == 1
    removed = await session.scalar(select(Member.removed_at).where(Member.id == member_id))
    assert removed is None


async def test_removal_in_another_village_is_not_found(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    a1: str,
    a1_id: uuid.UUID,
    members_a1: dict[str, uuid.UUID],
) -> None:
    response = await client.post(
        f"{a1}/members/{members_a1['张小龙']}/removal",
        json={"reason": "moved_out"},
        headers=write_headers(world, "officer_a2", '"v1"'),
    )
    problem(response, 404, "household_not_found")
    assert await version_of(session, a1_id) == 1
