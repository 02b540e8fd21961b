"""Visits: field errors (ACCEPTANCE 3), the phone's clock, reading one and a household's list."""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from tests.assertions import problem
from tests.builders import World
from tests.records.bodies import API, Table, ago, counts, parse, put, visit_body

PHOTO_0 = "body.photos.0."
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


async def put_visit(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    world: World,
    *,
    who: str = "officer_a1",
    visit_id: uuid.UUID | None = None,
) -> httpx.Response:
    return await put(client, world, "visit", body, record_id=visit_id, who=who)


# --- every field error: a 422 problem document naming the field, and nothing stored ----------


MISSING = object()  # the field left out of the body

# (changes to a valid body, the field the 422 must name)
INVALID: list[tuple[dict[str, Any], str]] = [
    (dict(mode="walk"), "body.mode"),
    (dict(mode=None), "body.mode"),
    (dict(visited_at="2026-11-20T09:30:00"), "body.visited_at"),  # naive: no offset
    (dict(visited_at="2026-11-20"), "body.visited_at"),
    (dict(visited_at="last tuesday"), "body.visited_at"),
    (dict(visited_at=None), "body.visited_at"),
    (dict(revision=0), "body.revision"),
    (dict(revision=-1), "body.revision"),
    (dict(revision="one"), "body.revision"),
    (dict(household_id="a1"), "body.household_id"),
    (dict(location={"lat": 91, "lon": 115.6}), "body.location.lat"),
    (dict(location={"lat": 36.2, "lon": -181}), "body.location.lon"),
    (dict(location={"lat": 36.2, "lon": 115.6, "crs": "utm"}), "body.location.crs"),
    (dict(location={"lat": 36.2, "lon": 115.6, "accuracy_m": -1}), "body.location.accuracy_m"),
    (dict(location={"lat": 36.2}), "body.location.lon"),
    (dict(checks={"food": "fine"}), "body.checks.food"),
    (dict(checks={"income": "ok"}), "body.checks.income"),
    (dict(photos=[{"sha256": "abc", "tag": "before"}]), "body.photos.0.sha256"),
    (dict(photos=[{"sha256": "g" * 64, "tag": "before"}]), "body.photos.0.sha256"),
    (dict(photos=[{"sha256": SHA + "0", "tag": "before"}]), "body.photos.0.sha256"),
    (dict(photos=[{"sha256": SHA, "tag": "selfie"}]), "body.photos.0.tag"),
    (dict(photos=[{"sha256": SHA, "tag": "after", "measure_id": 7}]), PHOTO_0 + "measure_id"),
    (dict(photos=[{"sha256": SHA, "tag": "after"}] * 51), "body.photos"),
    (dict(address="地" * 501), "body.address"),
    (dict(findings="记" * 10_001), "body.findings"),
    (dict(author_id=str(uuid.uuid4())), "body.author_id"),  # the server records the author
    (dict(flags=[]), "body.flags"),  # flags are the server's
    ({"revision": MISSING}, "body.revision"),
    ({"household_id": MISSING}, "body.household_id"),
    ({"visited_at": MISSING}, "body.visited_at"),
    ({"mode": MISSING}, "body.mode"),
]  # fmt: skip


async def test_every_field_error_is_a_422_naming_it_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household_id = world.households["a1"].id
    before = await counts(session)
    table = Table()
    for changes, field in INVALID:
        with table.case(f"{field} {changes!r:.80}"):
            body = {**visit_body(household_id), **changes}
            body = {name: value for name, value in body.items() if value is not MISSING}
            response = await put_visit(client, body, world)
            problem_body = problem(response, 422, "validation_failed", field)
            assert problem_body["type"].endswith("/validation-failed")
            assert all(error["message"] and error["type"] for error in problem_body["errors"])
    table.check()
    assert await counts(session) == before


async def test_path_id_must_be_a_uuid(client: httpx.AsyncClient, world: World) -> None:
    response = await client.put(
        f"{API}/visits/not-a-uuid",
        json=visit_body(world.households["a1"].id),
        headers=world.headers("officer_a1"),
    )
    problem(response, 422, "validation_failed", "path.visit_id")


async def test_unknown_household_is_404_naming_household_id(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    before = await counts(session)
    response = await put_visit(client, visit_body(uuid.uuid4()), world)
    body = problem(response, 404, "household_not_found", "body.household_id")
    assert await counts(session) == before

    # A household of another village answers exactly alike: existence is not leaked.
    other = await put_visit(client, visit_body(world.households["a2"].id), world)
    other_body = problem(other, 404, "household_not_found", "body.household_id")
    for key in ("type", "title", "status", "code", "errors"):
        assert other_body[key] == body[key], key
    assert set(other_body) == set(body)
    # …and a household of another county.
    problem(
        await put_visit(client, visit_body(world.households["b1"].id), world), 404, body["code"]
    )
    assert await counts(session) == before


# --- the phone's clock --------------------------------------------------------------------------


@pytest.mark.parametrize("ahead", [timedelta(minutes=11), timedelta(hours=1), timedelta(days=400)])
async def test_visited_at_beyond_ten_minutes_ahead_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, world: World, ahead: timedelta
) -> None:
    before = await counts(session)
    future = (utcnow() + ahead).isoformat()
    response = await put_visit(
        client, visit_body(world.households["a1"].id, visited_at=future), world
    )
    body = problem(response, 422, "validation_failed", "body.visited_at")
    assert body["errors"][0]["type"] == "in_future"
    assert await counts(session) == before


async def test_a_clock_a_little_ahead_is_accepted(client: httpx.AsyncClient, world: World) -> None:
    soon = utcnow() + timedelta(minutes=9)
    # Given in China's offset: the same instant.
    local = soon.astimezone(timezone(timedelta(hours=8))).isoformat()
    response = await put_visit(
        client, visit_body(world.households["a1"].id, visited_at=local), world
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert parse(body["visited_at"]) == soon
    assert body["flags"] == []


@pytest.mark.parametrize(
    ("visited", "flags"),
    [
        (timedelta(days=3 * 365), ["visited_long_ago"]),
        (timedelta(days=366), ["visited_long_ago"]),
        (timedelta(days=364), []),
        (timedelta(minutes=1), []),
    ],
)
async def test_a_visit_long_ago_is_kept_but_flagged(
    client: httpx.AsyncClient, world: World, visited: timedelta, flags: list[str]
) -> None:
    visit_id = uuid.uuid4()
    at = utcnow() - visited
    response = await put_visit(
        client,
        visit_body(world.households["a1"].id, visited_at=at.isoformat()),
        world,
        visit_id=visit_id,
    )
    assert response.status_code == 201, response.text
    assert response.json()["flags"] == flags
    stored = await client.get(f"{API}/visits/{visit_id}", headers=world.headers("admin_a"))
    assert stored.json()["flags"] == flags
    assert parse(stored.json()["visited_at"]) == at


# --- reading ------------------------------------------------------------------------------------


async def test_get_one_visit_as_written(client: httpx.AsyncClient, world: World) -> None:
    visit_id = uuid.uuid4()
    household_id = world.households["a1"].id
    sent = visit_body(
        household_id,
        visited_at="2026-11-20T09:30:00+08:00",
        mode="video",
        location={"lat": 36.2356, "lon": 115.6718, "accuracy_m": 12.5, "crs": "bd09"},
        address="燕店镇王庄村三组",
        requests="希望安排公益岗位",
        follow_up="联系镇人社所",
        checks={"food": "ok", "water": "not_ok"},
        photos=[
            {"sha256": SHA.upper(), "tag": "sign_in", "caption": "入户签到"},
            {"sha256": SHA, "tag": "after", "measure_id": str(visit_id)},
        ],
    )
    written = await put_visit(client, sent, world, visit_id=visit_id)
    assert written.status_code == 201, written.text
    # Read by another user of the village with pii:read (without it the position is coarsened:
    # tests/records/test_positions.py).
    read = await client.get(f"{API}/visits/{visit_id}", headers=world.headers("admin_a"))
    assert read.status_code == 200, read.text
    body = read.json()
    assert body == written.json()
    assert body["id"] == str(visit_id) and body["household_id"] == str(household_id)
    assert parse(body["visited_at"]) == parse("2026-11-20T01:30:00+00:00")
    assert body["mode"] == "video"
    assert body["location"] == {"lat": 36.2356, "lon": 115.6718, "accuracy_m": 12.5, "crs": "bd09"}
    assert body["checks"] == {
        "food": "ok", "clothing": "unknown", "education": "unknown",
        "medical": "unknown", "housing": "unknown", "water": "not_ok",
    }  # fmt: skip
    assert body["photos"] == [
        {"sha256": SHA, "tag": "sign_in", "caption": "入户签到", "measure_id": None},
        {"sha256": SHA, "tag": "after", "caption": None, "measure_id": str(visit_id)},
    ]
    assert body["author_id"] == str(world.users["officer_a1"].id)
    assert body["revision"] == 1
    assert body["received_at"] == body["updated_at"]
    # Without a location, none is made up.
    bare = await put_visit(client, visit_body(household_id), world)
    assert bare.json()["location"] is None


async def test_other_village_cannot_read_a_visit(client: httpx.AsyncClient, world: World) -> None:
    visit_id = uuid.uuid4()
    created = await put_visit(
        client, visit_body(world.households["a1"].id), world, visit_id=visit_id
    )
    assert created.status_code == 201
    for who in ("officer_a2", "admin_b"):
        hidden = await client.get(f"{API}/visits/{visit_id}", headers=world.headers(who))
        missing = await client.get(f"{API}/visits/{uuid.uuid4()}", headers=world.headers(who))
        hidden_body = problem(hidden, 404, "record_not_found")
        missing_body = problem(missing, 404, "record_not_found")
        assert set(hidden_body) == set(missing_body)
        listed = await client.get(
            f"{API}/households/{world.households['a1'].id}/visits", headers=world.headers(who)
        )
        problem(listed, 404, "household_not_found")
    # A visit is not another kind of record.
    wrong_kind = await client.get(f"{API}/measures/{visit_id}", headers=world.headers("officer_a1"))
    problem(wrong_kind, 404, "record_not_found")


async def list_all(
    client: httpx.AsyncClient, world: World, url: str, *, limit: int, who: str = "officer_a1"
) -> list[list[str]]:
    """Ids page by page, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(url, params=params, headers=world.headers(who))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


async def test_list_is_newest_first_with_cursor_pagination(
    client: httpx.AsyncClient, world: World
) -> None:
    household_id = world.households["a1"].id
    ids = []
    for n in range(5):
        visit_id = uuid.uuid4()
        # Received in this order; the last one happened longest ago (synced late from a phone).
        body = visit_body(household_id, visited_at=ago(days=n + 1), findings=f"第{n}次")
        assert (await put_visit(client, body, world, visit_id=visit_id)).status_code == 201
        ids.append(str(visit_id))
    # Another household's visits never show up.
    other = await put_visit(client, visit_body(world.households["a2"].id), world, who="admin_a")
    assert other.status_code == 201

    url = f"{API}/households/{household_id}/visits"
    newest_first = list(reversed(ids))
    assert await list_all(client, world, url, limit=2) == [
        newest_first[:2],
        newest_first[2:4],
        newest_first[4:],
    ]
    assert await list_all(client, world, url, limit=5) == [newest_first]
    assert await list_all(client, world, url, limit=100) == [newest_first]
    single = await list_all(client, world, url, limit=1)
    assert [page for page in single if page] == [[i] for i in newest_first]

    # The items are whole visits, as GET by id shows them.
    page = (await client.get(url, params={"limit": 1}, headers=world.headers("admin_a"))).json()
    one = await client.get(f"{API}/visits/{ids[-1]}", headers=world.headers("admin_a"))
    assert page["items"] == [one.json()]


async def test_pagination_survives_writes_between_pages(
    client: httpx.AsyncClient, world: World
) -> None:
    """Each visit exactly once, although visits are added and edited between pages."""
    household_id = world.households["a1"].id
    ids = []
    for _ in range(4):
        visit_id = uuid.uuid4()
        assert (
            await put_visit(client, visit_body(household_id), world, visit_id=visit_id)
        ).status_code == 201
        ids.append(visit_id)
    url = f"{API}/households/{household_id}/visits"
    headers = world.headers("officer_a1")
    first = (await client.get(url, params={"limit": 2}, headers=headers)).json()
    assert [item["id"] for item in first["items"]] == [str(ids[3]), str(ids[2])]

    # A new visit arrives and the oldest one gets a new revision.
    assert (await put_visit(client, visit_body(household_id), world)).status_code == 201
    edited = await put_visit(
        client, visit_body(household_id, 2, findings="已复查"), world, visit_id=ids[0]
    )
    assert edited.status_code == 200 and edited.headers["Record-Outcome"] == "updated"

    rest = (
        await client.get(url, params={"limit": 10, "cursor": first["next_cursor"]}, headers=headers)
    ).json()
    assert [item["id"] for item in rest["items"]] == [str(ids[1]), str(ids[0])]
    assert rest["items"][1]["findings"] == "已复查"
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": "WyJ4Il0"}, "query.cursor"),  # a list of one string: the wrong shape
    ],
)
async def test_bad_page_parameters_are_422(
    client: httpx.AsyncClient, world: World, params: dict[str, Any], field: str
) -> None:
    response = await client.get(
        f"{API}/households/{world.households['a1'].id}/visits",
        params=params,
        headers=world.headers("officer_a1"),
    )
    problem(response, 422, "validation_failed", field)


async def test_empty_list(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(
        f"{API}/households/{world.households['a1'].id}/visits", headers=world.headers("officer_a1")
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_an_id_taken_in_another_village_is_not_overwritten(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    visit_id = uuid.uuid4()
    original = await put_visit(
        client, visit_body(world.households["a1"].id), world, visit_id=visit_id
    )
    assert original.status_code == 201, original.text
    before = await counts(session)
    # officer_a2 sends the same id for a household of their own village.
    taken = await put_visit(
        client,
        visit_body(world.households["a2"].id, 2, findings="覆盖"),
        world,
        who="officer_a2",
        visit_id=visit_id,
    )
    problem(taken, 404, "record_not_found")
    assert await counts(session) == before
    stored = await client.get(f"{API}/visits/{visit_id}", headers=world.headers("officer_a1"))
    assert stored.json() == original.json()
