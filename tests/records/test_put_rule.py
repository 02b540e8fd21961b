"""The write rule: created once, then unchanged for retries; updated, conflict, stale."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.records.models import IncomeSnapshot, Measure, MeasureRevision, Visit
from app.records.service import decide
from app.records.vocabulary import Outcome
from app.users.models import Role
from tests.builders import VILLAGE_A1, World, make_user, token_for


def visit_body(world: World, revision: int = 1, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "revision": revision,
        "household_id": str(world.households["a1"].id),
        "visited_at": "2026-11-20T09:30:00+08:00",
        "mode": "in_home",
        "location": {"lat": 36.2356, "lon": 115.6718, "accuracy_m": 12.5, "crs": "gcj02"},
        "findings": "户主慢性病用药正常",
        "checks": {"food": "ok", "housing": "not_ok"},
        "photos": [{"sha256": "A" * 64, "tag": "sign_in"}],
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("stored", "sent", "same_content", "expected"),
    [
        (1, 2, False, Outcome.updated),
        (1, 2, True, Outcome.updated),
        (2, 2, True, Outcome.unchanged),
        (2, 2, False, Outcome.conflict),
        (3, 2, True, Outcome.stale),
        (3, 2, False, Outcome.stale),
    ],
)
def test_decide(stored: int, sent: int, same_content: bool, expected: Outcome) -> None:
    assert (
        decide(
            stored_revision=stored,
            stored_hash="h",
            revision=sent,
            new_hash="h" if same_content else "other",
        )
        is expected
    )


async def test_same_visit_five_times_is_created_once(client, session, world: World) -> None:  # type: ignore[no-untyped-def]
    visit_id = uuid.uuid4()
    headers = world.headers("officer_a1")
    outcomes = []
    for _ in range(5):
        response = await client.put(
            f"/api/v1/visits/{visit_id}", json=visit_body(world), headers=headers
        )
        assert response.status_code in (200, 201), response.text
        outcomes.append((response.status_code, response.headers["Record-Outcome"]))
    assert outcomes == [(201, "created")] + [(200, "unchanged")] * 4
    assert await session.scalar(select(func.count()).select_from(Visit)) == 1
    body = response.json()
    assert body["id"] == str(visit_id) and body["revision"] == 1
    assert body["checks"] == {
        "food": "ok", "clothing": "unknown", "education": "unknown",
        "medical": "unknown", "housing": "not_ok", "water": "unknown",
    }  # fmt: skip
    assert body["photos"][0]["sha256"] == "a" * 64  # normalised to lower case
    assert body["location"]["crs"] == "gcj02"
    assert body["author_id"] == str(world.users["officer_a1"].id)


async def test_update_conflict_and_stale(client, world: World) -> None:  # type: ignore[no-untyped-def]
    visit_id = uuid.uuid4()
    headers = world.headers("officer_a1")
    url = f"/api/v1/visits/{visit_id}"
    assert (await client.put(url, json=visit_body(world), headers=headers)).status_code == 201

    updated = await client.put(url, json=visit_body(world, 2, findings="已复查"), headers=headers)
    assert updated.status_code == 200 and updated.headers["Record-Outcome"] == "updated"
    assert updated.json()["findings"] == "已复查"

    conflict = await client.put(
        url, json=visit_body(world, 2, findings="别的内容"), headers=headers
    )
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["code"] == "conflict"
    assert conflict.json()["record"]["findings"] == "已复查"

    stale = await client.put(url, json=visit_body(world, 1), headers=headers)
    assert stale.status_code == 409 and stale.json()["code"] == "stale"
    assert stale.json()["record"]["revision"] == 2

    current = await client.get(url, headers=headers)
    assert current.json()["findings"] == "已复查" and current.json()["revision"] == 2


async def test_only_author_secretary_or_admin_may_update(client, session, world: World) -> None:  # type: ignore[no-untyped-def]
    visit_id = uuid.uuid4()
    url = f"/api/v1/visits/{visit_id}"
    author = world.headers("officer_a1")
    assert (await client.put(url, json=visit_body(world), headers=author)).status_code == 201

    colleague = await make_user(
        session,
        username=f"colleague-{uuid.uuid4().hex[:6]}",
        role=Role.officer,
        regions=[VILLAGE_A1],
    )
    colleague_headers = {"Authorization": f"Bearer {await token_for(session, colleague)}"}
    refused = await client.put(
        url, json=visit_body(world, 2, findings="改"), headers=colleague_headers
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "forbidden"

    secretary = await client.put(
        url, json=visit_body(world, 2, findings="书记补充"), headers=world.headers("secretary_a1")
    )
    assert secretary.status_code == 200, secretary.text
    admin = await client.put(
        url, json=visit_body(world, 3, findings="县里核实"), headers=world.headers("admin_a")
    )
    assert admin.status_code == 200, admin.text
    other_village = await client.put(
        url, json=visit_body(world, 4), headers=world.headers("officer_a2")
    )
    assert other_village.status_code == 404
    stored = (await client.get(url, headers=author)).json()
    assert stored["revision"] == 3 and stored["findings"] == "县里核实"


async def test_measure_revisions_are_kept_for_the_timeline(client, session, world: World) -> None:  # type: ignore[no-untyped-def]
    measure_id = uuid.uuid4()
    url = f"/api/v1/measures/{measure_id}"
    headers = world.headers("officer_a1")
    base = {
        "household_id": str(world.households["a1"].id),
        "category": "housing_safety",
        "title": "危房改造",
        "funds_yuan": "20000",
        "start_date": "2026-04-01",
        "due_date": "2026-10-31",
    }
    assert (await client.put(url, json={**base, "revision": 1}, headers=headers)).status_code == 201
    done = await client.put(
        url, json={**base, "revision": 2, "status": "done", "progress_pct": 100}, headers=headers
    )
    assert done.status_code == 200 and done.json()["funds_yuan"] == "20000.00"
    count = await session.scalar(
        select(func.count())
        .select_from(MeasureRevision)
        .where(MeasureRevision.measure_id == measure_id)
    )
    assert count == 2
    timeline = await client.get(
        f"/api/v1/households/{world.households['a1'].id}/timeline", headers=headers
    )
    assert timeline.status_code == 200, timeline.text
    types = [e["type"] for e in timeline.json()["items"]]
    assert "measure_created" in types and "measure_updated" in types
    assert await session.scalar(select(func.count()).select_from(Measure)) == 1
    assert await session.scalar(select(func.count()).select_from(IncomeSnapshot)) == 0


async def test_negative_zero_and_explicit_defaults_are_the_same_content(
    client, world: World
) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/visits/{uuid.uuid4()}"
    headers = world.headers("officer_a1")
    location = {"lat": 0.0, "lon": 115.6718, "crs": "wgs84"}
    first = visit_body(world, location=location)
    assert (await client.put(url, json=first, headers=headers)).status_code == 201
    again = visit_body(world, location={**location, "lat": -0.0, "accuracy_m": None})
    again["requests"] = None  # explicit default
    retry = await client.put(url, json=again, headers=headers)
    assert retry.status_code == 200 and retry.headers["Record-Outcome"] == "unchanged"


async def test_nul_in_text_is_refused_on_every_database(client, world: World) -> None:  # type: ignore[no-untyped-def]
    response = await client.put(
        f"/api/v1/visits/{uuid.uuid4()}",
        json=visit_body(world, findings="a\x00b"),
        headers=world.headers("officer_a1"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.findings"


async def test_snapshot_recorded_in_the_future_is_refused(client, session, world: World) -> None:  # type: ignore[no-untyped-def]
    body = {
        "revision": 1,
        "household_id": str(world.households["a1"].id),
        "year": 2026,
        "kind": "monitoring",
        "household_size": 2,
        "recorded_at": "2999-01-01T00:00:00+08:00",
    }
    response = await client.put(
        f"/api/v1/income-snapshots/{uuid.uuid4()}", json=body, headers=world.headers("officer_a1")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.recorded_at"
    assert await session.scalar(select(func.count()).select_from(IncomeSnapshot)) == 0
