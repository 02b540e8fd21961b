"""A household's timeline: visits, snapshots, measure changes and status changes, oldest first."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.assertions import problem
from tests.builders import World
from tests.records.bodies import API, ago, measure_body, parse, put, snapshot_body, visit_body


def timeline_url(world: World, household: str = "a1") -> str:
    return f"{API}/households/{world.households[household].id}/timeline"


async def all_events(
    client: httpx.AsyncClient, world: World, *, limit: int, who: str = "officer_a1"
) -> tuple[list[dict[str, Any]], int]:
    """Every event, following next_cursor to the end; and how many pages that took."""
    events: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(timeline_url(world), params=params, headers=world.headers(who))
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["items"]) <= limit
        events.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return events, pages
        assert pages < 100, "pagination does not end"


async def patch_status(
    client: httpx.AsyncClient, world: World, version: int, who: str = "officer_a1", **change: Any
) -> None:
    response = await client.patch(
        f"{API}/households/{world.households['a1'].id}",
        json=change,
        headers={**world.headers(who), "If-Match": f'"v{version}"'},
    )
    assert response.status_code == 200, response.text


async def test_events_in_time_order_with_each_exactly_once_per_page_size(
    client: httpx.AsyncClient, world: World
) -> None:
    household_id = world.households["a1"].id
    visit_old, visit_recent, visit_late, snapshot = (uuid.uuid4() for _ in range(4))
    measure = uuid.uuid4()

    # Device times in the past: they sort by when they happened, not by when they arrived.
    r = await put(
        client,
        world,
        "visit",
        visit_body(household_id, visited_at=ago(days=2)),
        record_id=visit_recent,
    )
    assert r.status_code == 201, r.text
    body = snapshot_body(
        household_id, recorded_at=ago(days=3), wage_income="300.00", household_size=3
    )
    r = await put(client, world, "income_snapshot", body, record_id=snapshot)
    assert r.status_code == 201, r.text
    # Server times: the measure's revisions and the household's status changes.
    r = await put(client, world, "measure", measure_body(household_id), record_id=measure)
    assert r.status_code == 201, r.text
    # The exit rule does not hold: the county admin lifts it with a reason.
    await patch_status(
        client, world, 1, "admin_a", status="lifted", exit_year=2024, override_reason="验收通过"
    )
    await patch_status(client, world, 2, group_name="三组")  # no status change: no event
    body = measure_body(household_id, 2, status="in_progress", progress_pct=40)
    r = await put(client, world, "measure", body, record_id=measure)
    assert r.headers["Record-Outcome"] == "updated"
    # Retries and refused writes add nothing.
    r = await put(client, world, "measure", body, record_id=measure)
    assert r.headers["Record-Outcome"] == "unchanged"
    r = await put(
        client, world, "measure", measure_body(household_id, 2, title="别的"), record_id=measure
    )
    assert r.status_code == 409
    await patch_status(client, world, 3, status="returned")
    # A visit of long ago, synced last.
    r = await put(
        client,
        world,
        "visit",
        visit_body(household_id, visited_at=ago(days=400), mode="phone"),
        record_id=visit_old,
    )
    assert r.status_code == 201, r.text
    # A phone clock 5 minutes fast (within the tolerance): after everything the server saw.
    r = await put(
        client,
        world,
        "visit",
        visit_body(household_id, visited_at=ago(minutes=-5)),
        record_id=visit_late,
    )
    assert r.status_code == 201, r.text
    # Another household's records are not in this timeline.
    other = visit_body(world.households["a2"].id)
    assert (await put(client, world, "visit", other, who="admin_a")).status_code == 201

    events, _ = await all_events(client, world, limit=100)
    summary = [(e["type"], e["record_id"]) for e in events]
    assert summary == [
        ("visit", str(visit_old)),
        ("income_snapshot", str(snapshot)),
        ("visit", str(visit_recent)),
        ("measure_created", str(measure)),
        ("status_changed", None),
        ("measure_updated", str(measure)),
        ("status_changed", None),
        ("visit", str(visit_late)),
    ]  # fmt: skip
    times = [parse(e["at"]) for e in events]
    assert times == sorted(times)
    assert all(t.utcoffset() is not None for t in times)

    details = [e["detail"] for e in events]
    assert details[0] == {"mode": "phone"}
    assert details[1] == {"kind": "annual", "year": 2024, "per_capita_income": "100.00"}
    assert details[3] == {"revision": 1, "status": "planned", "progress_pct": 0}
    assert details[4] == {"from": "in_poverty", "to": "lifted", "override_reason": "验收通过"}
    assert details[5] == {"revision": 2, "status": "in_progress", "progress_pct": 40}
    assert details[6] == {"from": "lifted", "to": "returned"}

    # Any page size gives the same events, each exactly once.
    for limit in (1, 2, 3, 7, 8):
        paged, pages = await all_events(client, world, limit=limit, who="secretary_a1")
        assert paged == events, limit
        assert pages == -(-len(events) // limit)  # no empty last page


async def test_events_at_the_same_instant_are_each_listed_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """Ties on time are broken by the event id, so pages neither repeat nor skip."""
    household_id = world.households["a1"].id
    at = ago(hours=5)
    ids = set()
    for _ in range(5):
        visit_id = uuid.uuid4()
        r = await put(
            client, world, "visit", visit_body(household_id, visited_at=at), record_id=visit_id
        )
        assert r.status_code == 201, r.text
        ids.add(str(visit_id))
    for limit in (1, 2, 4):
        events, _ = await all_events(client, world, limit=limit)
        assert len(events) == 5
        assert {e["record_id"] for e in events} == ids


async def test_a_measure_first_received_at_a_later_revision_is_created(
    client: httpx.AsyncClient, world: World
) -> None:
    """Edited twice on the phone before it synced: the server's first revision is a creation."""
    household_id = world.households["a1"].id
    measure = uuid.uuid4()
    r = await put(
        client,
        world,
        "measure",
        measure_body(household_id, 3, status="in_progress"),
        record_id=measure,
    )
    assert r.status_code == 201, r.text
    r = await put(
        client, world, "measure", measure_body(household_id, 5, status="done"), record_id=measure
    )
    assert r.headers["Record-Outcome"] == "updated"
    events, _ = await all_events(client, world, limit=10)
    assert [(e["type"], e["detail"]["revision"]) for e in events] == [
        ("measure_created", 3),
        ("measure_updated", 5),
    ]


async def test_empty_timeline(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(timeline_url(world), headers=world.headers("admin_a"))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_timeline_of_another_village_is_404(client: httpx.AsyncClient, world: World) -> None:
    for who in ("officer_a2", "admin_b"):
        hidden = await client.get(timeline_url(world), headers=world.headers(who))
        missing = await client.get(
            f"{API}/households/{uuid.uuid4()}/timeline", headers=world.headers(who)
        )
        assert (
            problem(hidden, 404, "household_not_found").keys()
            == problem(missing, 404, "household_not_found").keys()
        )


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "WyJ4Il0",  # ["x"]: one value instead of two
        "WyJ4IiwieSJd",  # ["x","y"]: neither a time nor an id
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwieSJd",  # a time, but not an id
    ],
)
async def test_bad_cursor_is_422(client: httpx.AsyncClient, world: World, cursor: str) -> None:
    response = await client.get(
        timeline_url(world), params={"cursor": cursor}, headers=world.headers("officer_a1")
    )
    problem(response, 422, "validation_failed", "query.cursor")
