"""/api/v1/households: registering, rejecting bad input whole, listing, searching, editing."""

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.households import id_numbers
from app.households.models import Household, Member
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    ID_HEAD_A1,
    ID_SPOUSE_A1,
    PHONE_A1,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_household,
    make_id_number,
)

URL = "/api/v1/households"
NUMBER = "3715221022010007"
HEAD_ID = make_id_number(307, "19620408")  # ends in X
OLD_SPOUSE_ID = "371522650709123"  # 15 digits, born 1965-07-09
SPOUSE_ID = "37152219650709123" + id_numbers.check_char("37152219650709123")


def new_household(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": NUMBER,
        "village_code": VILLAGE_A3,
        "group_name": "三组",
        "head_name": "刘振华",
        "phone": "13805359876",
        "attribute": "dibao",
        "status": "in_poverty",
        "main_cause": "illness",
        "other_causes": ["lack_labour", "lack_skills"],
        "identified_year": 2014,
        "planned_exit_year": 2017,
        "pairing_cadres": [
            {
                "name": "李明",
                "level": "county",
                "unit": "莘县农业农村局",
                "start_date": "2016-03-01",
            }
        ],
        "members": [
            {
                "name": "刘振华",
                "id_number": HEAD_ID.lower(),
                "relation": "head",
                "health": "chronic",
                "labour": "weak",
                "medical_insurance": True,
            },
            {"name": "陈桂兰", "id_number": OLD_SPOUSE_ID, "relation": "spouse"},
            {"name": "刘小花", "relation": "child", "in_school": True},
        ],
    }
    body.update(changes)
    return body


def with_member(index: int, **changes: Any) -> dict[str, Any]:
    body = new_household()
    body["members"] = copy.deepcopy(body["members"])
    body["members"][index].update(changes)
    return body


async def counts(session: AsyncSession) -> tuple[int, int]:
    households = await session.scalar(select(func.count()).select_from(Household))
    members = await session.scalar(select(func.count()).select_from(Member))
    return households or 0, members or 0


async def version_of(session: AsyncSession, household_id: Any) -> int:
    version = await session.scalar(select(Household.version).where(Household.id == household_id))
    assert version is not None
    return version


async def numbers(client: httpx.AsyncClient, world: World, who: str, **params: Any) -> list[str]:
    response = await client.get(URL, params=params, headers=world.headers(who))
    assert response.status_code == 200, response.text
    return [h["number"] for h in response.json()["items"]]


# --- creating ------------------------------------------------------------------------------


async def test_county_admin_registers_a_household(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    assert HEAD_ID.endswith("X")
    response = await client.post(URL, json=new_household(), headers=world.headers("admin_a"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"{URL}/{body['id']}"
    assert response.headers["ETag"] == '"v1"'
    assert body["version"] == 1
    assert body["number"] == NUMBER
    assert body["village_code"] == VILLAGE_A3
    assert body["other_causes"] == ["lack_labour", "lack_skills"]
    assert body["pairing_cadres"][0]["start_date"] == "2016-03-01"
    assert body["household_size"] == 3
    assert body["pii_masked"] is False
    assert body["phone"] == "13805359876"
    members = {m["name"]: m for m in body["members"]}
    assert members["刘振华"]["id_number"] == HEAD_ID  # the lower-case x normalized
    assert members["陈桂兰"]["id_number"] == SPOUSE_ID  # the 15-digit number upgraded
    assert members["陈桂兰"]["birth_date"] == "1965-07-09"
    # A member without an ID number is accepted, and the household flagged.
    assert members["刘小花"]["id_number"] is None
    assert members["刘小花"]["id_number_missing"] is True
    assert members["刘振华"]["id_number_missing"] is False
    assert body["flags"] == ["member_without_id_number"]

    stored = {
        m.name: m
        for m in await session.scalars(
            select(Member).where(Member.household_id == uuid.UUID(body["id"]))
        )
    }
    key = get_settings().pii_hash_key
    assert stored["陈桂兰"].id_number == SPOUSE_ID
    assert stored["陈桂兰"].id_number_hash == id_numbers.search_hash(SPOUSE_ID, key=key)
    assert stored["刘小花"].id_number_hash is None

    again = await client.get(response.headers["Location"], headers=world.headers("admin_a"))
    assert again.status_code == 200
    assert again.headers["ETag"] == '"v1"'
    assert again.json()["members"] == body["members"]


async def test_a_household_without_members_is_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        URL, json=new_household(members=[]), headers=world.headers("admin_a")
    )
    assert response.status_code == 201, response.text
    assert response.json()["flags"] == ["no_members"]
    assert response.json()["status"] == "in_poverty"


MALFORMED = object()


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        pytest.param(MALFORMED, 422, "validation_failed", None, id="malformed-json"),
        pytest.param([1, 2], 422, "validation_failed", "body", id="not-an-object"),
        pytest.param(
            new_household(identified_year="twenty"),
            422,
            "validation_failed",
            "body.identified_year",
            id="year-not-a-number",
        ),
        pytest.param(
            new_household(members="all of them"),
            422,
            "validation_failed",
            "body.members",
            id="members-not-a-list",
        ),
        pytest.param(
            with_member(2, in_school="maybe"),
            422,
            "validation_failed",
            "body.members.2.in_school",
            id="bool-not-a-bool",
        ),
        pytest.param(
            new_household(attribute="rich"),
            422,
            "validation_failed",
            "body.attribute",
            id="unknown-attribute",
        ),
        pytest.param(
            {k: v for k, v in new_household().items() if k != "head_name"},
            422,
            "validation_failed",
            "body.head_name",
            id="missing-head-name",
        ),
        pytest.param(
            new_household(surprise=1),
            422,
            "validation_failed",
            "body.surprise",
            id="unknown-field",
        ),
        pytest.param(
            with_member(0, id_number="11010519491231002"),
            422,
            "validation_failed",
            "body.members.0.id_number",
            id="id-number-too-short",
        ),
        pytest.param(
            with_member(0, id_number=HEAD_ID[:17] + ("1" if HEAD_ID[17] != "1" else "2")),
            422,
            "validation_failed",
            "body.members.0.id_number",
            id="id-number-wrong-check",
        ),
        pytest.param(
            with_member(1, id_number="371522650230123"),
            422,
            "validation_failed",
            "body.members.1.id_number",
            id="id-number-impossible-date",
        ),
        pytest.param(
            with_member(2, id_number=HEAD_ID),
            422,
            "validation_failed",
            "body.members.2.id_number",
            id="id-number-twice-in-the-body",
        ),
        pytest.param(
            with_member(1, relation="head"),
            422,
            "validation_failed",
            "body.members",
            id="two-heads",
        ),
        pytest.param(
            new_household(phone="call me"),
            422,
            "validation_failed",
            "body.phone",
            id="bad-phone",
        ),
        pytest.param(
            new_household(village_code="371522101299"),
            422,
            "validation_failed",
            "body.village_code",
            id="unknown-village",
        ),
        pytest.param(
            new_household(village_code=TOWN_A1),
            422,
            "validation_failed",
            "body.village_code",
            id="a-town-is-not-a-village",
        ),
        pytest.param(
            new_household(village_code=VILLAGE_B1),
            422,
            "validation_failed",
            "body.village_code",
            id="village-of-another-county",
        ),
        pytest.param(
            new_household(other_causes=["lack_labour", "illness"]),
            422,
            "validation_failed",
            "body.other_causes",
            id="other-causes-repeat-main-cause",
        ),
        pytest.param(
            new_household(other_causes=["lack_labour", "lack_labour"]),
            422,
            "validation_failed",
            "body.other_causes",
            id="other-causes-twice",
        ),
        pytest.param(
            new_household(planned_exit_year=2013),
            422,
            "validation_failed",
            "body.planned_exit_year",
            id="planned-exit-before-identification",
        ),
        pytest.param(
            new_household(number="3715221012010001"),
            409,
            "household_number_taken",
            "body.number",
            id="duplicate-number",
        ),
        pytest.param(
            with_member(1, id_number=ID_SPOUSE_A1),
            409,
            "id_number_registered",
            "body.members.1.id_number",
            id="id-number-of-a-current-member",
        ),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_nothing_is_written(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    body: Any,
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = await counts(session)
    headers = world.headers("admin_a")
    if body is MALFORMED:
        response = await client.post(
            URL,
            content=b'{"number": "3715221022010007", "village_code": ',
            headers={**headers, "Content-Type": "application/json"},
        )
    else:
        response = await client.post(URL, json=body, headers=headers)
    problem_doc = problem(response, status, code, field)
    if body is MALFORMED:
        assert [e["type"] for e in problem_doc["errors"]] == ["json_invalid"]
        assert problem_doc["errors"][0]["field"] == "body"
    assert await counts(session) == before
    assert await numbers(client, world, "admin_a", region=VILLAGE_A3) == []


async def test_an_id_number_of_a_removed_member_may_be_registered_again(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    member = await session.scalar(select(Member).where(Member.name == "李秀英"))
    assert member is not None
    member.removed_at = datetime.now(UTC)
    member.removed_reason = "married_out"
    await session.flush()
    response = await client.post(
        URL, json=with_member(1, id_number=ID_SPOUSE_A1), headers=world.headers("admin_a")
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("who", ["officer_a1", "secretary_a1", "admin_b"])
async def test_only_the_county_admin_of_the_village_registers(
    client: httpx.AsyncClient, session: AsyncSession, world: World, who: str
) -> None:
    before = await counts(session)
    response = await client.post(
        URL, json=new_household(village_code=VILLAGE_A1), headers=world.headers(who)
    )
    if who == "admin_b":
        problem(response, 422, "validation_failed", "body.village_code")
    else:
        problem(response, 403, "forbidden")
    assert await counts(session) == before


# --- listing -------------------------------------------------------------------------------


@pytest.fixture
async def a3(session: AsyncSession, world: World) -> Household:
    household = await make_household(
        session,
        village=VILLAGE_A3,
        number="3715221022010001",
        head_name="刘振华",
        attribute="dibao",
        status="lifted",
        members=[
            {"name": "刘振华", "id_number": make_id_number(31, "19600101"), "relation": "head"},
            {"name": "刘小花", "relation": "child"},
        ],
    )
    await session.commit()
    return household


A1, A2, A3, B1 = "3715221012010001", "3715221012020001", "3715221022010001", "3715231012010001"


async def test_lists_are_ordered_by_number_and_limited_to_the_callers_villages(
    client: httpx.AsyncClient, world: World, a3: Household
) -> None:
    assert await numbers(client, world, "admin_a") == [A1, A2, A3]
    assert await numbers(client, world, "admin_b") == [B1]
    assert await numbers(client, world, "officer_a1") == [A1]
    assert await numbers(client, world, "officer_a2") == [A2]


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        (COUNTY_A, [A1, A2, A3]),
        (TOWN_A1, [A1, A2]),
        ("371522102000", [A3]),
        (VILLAGE_A1, [A1]),
        (VILLAGE_A2, [A2]),
        (VILLAGE_B1, []),  # another county: nothing, whatever exists there
        ("371500000000", [A1, A2, A3]),  # the city: still only the caller's county
    ],
)
async def test_filter_by_region(
    client: httpx.AsyncClient, world: World, a3: Household, region: str, expected: list[str]
) -> None:
    assert await numbers(client, world, "admin_a", region=region) == expected


async def test_filter_by_status_and_attribute(
    client: httpx.AsyncClient, world: World, a3: Household
) -> None:
    assert await numbers(client, world, "admin_a", status="lifted") == [A3]
    assert await numbers(client, world, "admin_a", status="in_poverty") == [A1, A2]
    assert await numbers(client, world, "admin_a", attribute="dibao") == [A3]
    assert await numbers(client, world, "admin_a", attribute="general", status="lifted") == []


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("王福", [A2]),  # part of the head's name
        ("振华", [A3]),
        ("秀英", [A1]),  # a member's name
        ("小", [A1, A3]),  # 张小龙 and 刘小花
        ("371522101", [A1, A2]),  # a number prefix
        (A3, [A3]),
        ("1012020001", []),  # inside a number, not its start
        ("%", []),  # wildcards are searched for, not expanded
        ("_", []),
    ],
)
async def test_filter_by_q(
    client: httpx.AsyncClient, world: World, a3: Household, q: str, expected: list[str]
) -> None:
    assert await numbers(client, world, "admin_a", q=q) == expected


async def test_q_ignores_removed_members(
    client: httpx.AsyncClient, session: AsyncSession, world: World, a3: Household
) -> None:
    member = await session.scalar(select(Member).where(Member.name == "张小龙"))
    assert member is not None
    member.removed_at = datetime.now(UTC)
    await session.commit()
    assert await numbers(client, world, "admin_a", q="小") == [A3]


async def test_filter_by_updated_since(
    client: httpx.AsyncClient, session: AsyncSession, world: World, a3: Household
) -> None:
    world.households["a1"].updated_at = datetime(2020, 1, 1, tzinfo=UTC)
    world.households["a2"].updated_at = datetime(2024, 1, 1, tzinfo=UTC)
    await session.commit()
    # 2024-01-01T08:00+08:00 is a2's change, 00:00 UTC.
    assert await numbers(client, world, "admin_a", updated_since="2024-01-01T08:00:00+08:00") == [
        A2,
        A3,
    ]
    assert await numbers(client, world, "admin_a", updated_since="2024-01-01T08:00:01+08:00") == [
        A3
    ]
    assert await numbers(client, world, "admin_a", updated_since="2023-12-31T23:59:59Z") == [
        A2,
        A3,
    ]
    assert await numbers(client, world, "admin_a", updated_since="2019-12-31T00:00:00-05:00") == [
        A1,
        A2,
        A3,
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"updated_since": "2024-01-01T08:00:00"}, "query.updated_since"),  # no timezone
        ({"updated_since": "yesterday"}, "query.updated_since"),
        ({"limit": 501}, "query.limit"),
        ({"limit": 0}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": "WyJhIiwiYiJd"}, "query.cursor"),  # a list of two: not one of ours
        ({"region": "37152210120"}, "query.region"),
        ({"status": "rich"}, "query.status"),
        ({"attribute": "poor"}, "query.attribute"),
    ],
)
async def test_bad_list_parameters_are_problems(
    client: httpx.AsyncClient, world: World, params: dict[str, Any], field: str
) -> None:
    response = await client.get(URL, params=params, headers=world.headers("admin_a"))
    problem(response, 422, "validation_failed", field)


async def test_limit_500_is_allowed_and_pages_follow_the_cursor(
    client: httpx.AsyncClient, world: World, a3: Household
) -> None:
    response = await client.get(URL, params={"limit": 500}, headers=world.headers("admin_a"))
    assert response.status_code == 200
    assert response.json()["next_cursor"] is None
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        response = await client.get(URL, params=params, headers=world.headers("admin_a"))
        assert response.status_code == 200, response.text
        seen += [h["number"] for h in response.json()["items"]]
        if response.json()["next_cursor"] is None:
            break
        params["cursor"] = response.json()["next_cursor"]
    assert seen == [A1, A2, A3]


async def test_pii_is_masked_for_a_caller_without_pii_read(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(URL, headers=world.headers("secretary_a1"))
    assert response.status_code == 200, response.text
    (household,) = response.json()["items"]
    assert household["pii_masked"] is True
    assert household["phone"] == PHONE_A1[:3] + "****" + PHONE_A1[-4:]
    masked = {m["name"]: m for m in household["members"]}
    assert masked["张建国"]["id_number"] == id_numbers.mask(ID_HEAD_A1)
    assert masked["张建国"]["birth_date"] is None
    response = await client.get(URL, headers=world.headers("officer_a1"))
    (household,) = response.json()["items"]
    assert household["pii_masked"] is False
    assert household["phone"] == PHONE_A1
    assert {m["id_number"] for m in household["members"]} == {ID_HEAD_A1, ID_SPOUSE_A1, None}


# --- search by ID number -------------------------------------------------------------------


async def search(client: httpx.AsyncClient, world: World, who: str, id_number: str) -> list[str]:
    response = await client.post(
        f"{URL}/search", json={"id_number": id_number}, headers=world.headers(who)
    )
    assert response.status_code == 200, response.text
    return [h["number"] for h in response.json()["items"]]


async def test_search_by_exact_id_number(client: httpx.AsyncClient, world: World) -> None:
    assert await search(client, world, "officer_a1", ID_SPOUSE_A1) == [A1]
    assert await search(client, world, "admin_a", ID_HEAD_A1.lower()) == [A1]
    assert await search(client, world, "admin_a", "110105491231002") == [A1]  # 15-digit form
    b1_head = make_id_number(21, "19700512", "371523")
    assert await search(client, world, "admin_b", b1_head) == [B1]
    # Outside the caller's villages, the household is not found.
    assert await search(client, world, "officer_a2", ID_SPOUSE_A1) == []
    assert await search(client, world, "admin_b", ID_SPOUSE_A1) == []
    assert await search(client, world, "admin_a", b1_head) == []
    # An ID number nobody holds.
    assert await search(client, world, "admin_a", make_id_number(999)) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id_number": "110105194912310021"}, "body.id_number"),
        ({"id_number": "1101"}, "body.id_number"),
        ({}, "body.id_number"),
        ({"id_number": ID_HEAD_A1, "name": "张建国"}, "body.name"),
    ],
)
async def test_search_with_bad_input_is_a_problem(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = await client.post(f"{URL}/search", json=body, headers=world.headers("admin_a"))
    problem(response, 422, "validation_failed", field)


# --- reading and editing one ---------------------------------------------------------------


async def test_get_one_with_a_strong_etag(client: httpx.AsyncClient, world: World) -> None:
    a1_id = world.households["a1"].id
    response = await client.get(f"{URL}/{a1_id}", headers=world.headers("officer_a1"))
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v1"'
    body = response.json()
    assert body["number"] == A1
    assert body["household_size"] == 3
    assert body["flags"] == ["member_without_id_number"]


@pytest.mark.parametrize(
    ("who", "household"), [("officer_a2", "a1"), ("admin_b", "a1"), ("admin_a", "b1")]
)
async def test_get_one_out_of_reach_is_not_found(
    client: httpx.AsyncClient, world: World, who: str, household: str
) -> None:
    response = await client.get(
        f"{URL}/{world.households[household].id}", headers=world.headers(who)
    )
    problem(response, 404, "household_not_found")


async def test_get_an_unknown_household_is_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"{URL}/{uuid.uuid4()}", headers=world.headers("admin_a"))
    problem(response, 404, "household_not_found")
    response = await client.get(f"{URL}/not-a-uuid", headers=world.headers("admin_a"))
    problem(response, 422, "validation_failed", "path.household_id")


async def test_patch_without_if_match_is_428(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a1_id = world.households["a1"].id  # read before a failing request expires it
    response = await client.patch(
        f"{URL}/{a1_id}", json={"status": "lifted"}, headers=world.headers("officer_a1")
    )
    body = problem(response, 428, "precondition_required")
    assert body["current_etag"] == '"v1"'
    assert await version_of(session, a1_id) == 1


@pytest.mark.parametrize("if_match", ['"v0"', '"v2"', 'W/"v1"', "v1", '"v1-x"'])
async def test_patch_with_a_stale_or_weak_if_match_is_412(
    client: httpx.AsyncClient, session: AsyncSession, world: World, if_match: str
) -> None:
    a1_id = world.households["a1"].id  # read before a failing request expires it
    response = await client.patch(
        f"{URL}/{a1_id}",
        json={"status": "lifted"},
        headers={**world.headers("officer_a1"), "If-Match": if_match},
    )
    body = problem(response, 412, "precondition_failed")
    assert body["current_etag"] == '"v1"'
    assert await version_of(session, a1_id) == 1
    status = await session.scalar(select(Household.status).where(Household.id == a1_id))
    assert status == "in_poverty"


async def test_patch_with_the_current_etag_bumps_the_version(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a1_id = world.households["a1"].id  # read before a failing request expires it
    url = f"{URL}/{a1_id}"
    before = (await client.get(url, headers=world.headers("officer_a1"))).json()
    change = {"status": "returned", "exit_year": 2019, "phone": None, "other_causes": ["disaster"]}
    response = await client.patch(
        url, json=change, headers={**world.headers("officer_a1"), "If-Match": '"v1"'}
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v2"'
    body = response.json()
    assert body["version"] == 2
    assert (body["status"], body["exit_year"], body["phone"]) == ("returned", 2019, None)
    assert body["other_causes"] == ["disaster"]
    assert body["head_name"] == before["head_name"]  # untouched fields stay
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(before["updated_at"])
    assert await version_of(session, a1_id) == 2

    again = await client.get(url, headers=world.headers("officer_a1"))
    assert again.headers["ETag"] == '"v2"'
    assert again.json()["status"] == "returned"
    # The ETag that was good a moment ago is now stale.
    response = await client.patch(
        url, json={"status": "new"}, headers={**world.headers("officer_a1"), "If-Match": '"v1"'}
    )
    problem(response, 412, "precondition_failed")
    # One of several listed tags matching is enough.
    response = await client.patch(
        url,
        json={"status": "new"},
        headers={**world.headers("admin_a"), "If-Match": '"v1", "v2"'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v3"'


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"head_name": None}, "body.head_name"),
        ({"status": None}, "body.status"),
        ({"other_causes": None}, "body.other_causes"),
        ({"head_name": ""}, "body.head_name"),
        ({"number": "3715221012019999"}, "body.number"),
        ({"village_code": VILLAGE_A2}, "body.village_code"),
        ({"version": 7}, "body.version"),
        ({"status": "rich"}, "body.status"),
        ({"other_causes": ["illness"]}, "body.other_causes"),  # a1's main cause
        ({"main_cause": "disaster", "other_causes": ["disaster"]}, "body.other_causes"),
        ({"planned_exit_year": 2010}, "body.planned_exit_year"),  # a1 identified in 2014
        ({"identified_year": "soon"}, "body.identified_year"),
    ],
)
async def test_bad_patches_are_problems_and_change_nothing(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    change: dict[str, Any],
    field: str,
) -> None:
    a1_id = world.households["a1"].id  # read before a failing request expires it
    response = await client.patch(
        f"{URL}/{a1_id}", json=change, headers={**world.headers("admin_a"), "If-Match": '"v1"'}
    )
    problem(response, 422, "validation_failed", field)
    assert await version_of(session, a1_id) == 1
    row = (
        await session.execute(
            select(Household.head_name, Household.number, Household.village_code).where(
                Household.id == a1_id
            )
        )
    ).one()
    assert tuple(row) == ("张建国", A1, VILLAGE_A1)


async def test_patching_another_villages_household_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a1_id = world.households["a1"].id  # read before a failing request expires it
    response = await client.patch(
        f"{URL}/{a1_id}",
        json={"status": "lifted"},
        headers={**world.headers("officer_a2"), "If-Match": '"v1"'},
    )
    problem(response, 404, "household_not_found")
    assert await version_of(session, a1_id) == 1
