"""Events are written to the outbox by the writes that cause them, in the same transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from app.records import service as records_service
from app.records.vocabulary import RecordType
from app.thresholds.models import PovertyThreshold
from app.webhooks.models import WebhookEvent
from tests.builders import COUNTY_A, ID_HEAD_A1, PHONE_A1, VILLAGE_A1, VILLAGE_A2, World
from tests.records.bodies import ago, measure_body, put, snapshot_body, visit_body
from tests.webhooks.helpers import API, event_count, events, listening, make_webhook, principal_of


def _no_personal_data(event: WebhookEvent) -> None:
    text = str(event.data)
    for secret in (ID_HEAD_A1, PHONE_A1, "张建国", "户主慢性病用药正常"):
        assert secret not in text


async def test_a_new_visit_is_an_event_and_retries_or_revisions_are_not(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    household = world.households["a1"]
    visit_id = uuid.uuid4()
    body = visit_body(
        household.id,
        location={"lat": 36.2356, "lon": 115.6718, "accuracy_m": 12.5, "crs": "wgs84"},
        checks={"food": "ok", "housing": "not_ok"},
    )

    assert (await put(client, world, "visit", body, record_id=visit_id)).status_code == 201
    assert (await put(client, world, "visit", body, record_id=visit_id)).status_code == 200
    revised = {**body, "revision": 2, "mode": "phone"}
    assert (await put(client, world, "visit", revised, record_id=visit_id)).status_code == 200

    [event] = await events(session)
    assert event.type == "visit.created"
    assert event.household_id == household.id
    assert event.region_code == VILLAGE_A1
    assert event.dispatched_at is None
    assert event.data == {
        "visit_id": str(visit_id),
        "household_id": str(household.id),
        "revision": 1,
        "visited_at": event.data["visited_at"],
        "mode": "in_home",
        "checks": {
            "food": "ok",
            "clothing": "unknown",
            "education": "unknown",
            "medical": "unknown",
            "housing": "not_ok",
            "water": "unknown",
        },
        "author_id": str(world.users["officer_a1"].id),
    }
    assert event.data["visited_at"].endswith("Z")
    assert "lat" not in str(event.data) and "36.2356" not in str(event.data)
    _no_personal_data(event)


async def test_an_event_lives_and_dies_with_its_transaction(
    world: World, session: AsyncSession
) -> None:
    """A write rolled back leaves no event behind; a committed one leaves exactly its own."""
    await listening(session, world)  # events are written while a webhook is active
    officer = world.users["officer_a1"]
    principal = principal_of(officer, (VILLAGE_A1,))
    kind = records_service.KINDS[RecordType.visit]

    async def write() -> None:
        await records_service.apply_record(
            session,
            principal=principal,
            kind=kind,
            record_id=uuid.uuid4(),
            data=kind.write.model_validate(visit_body(world.households["a1"].id)),
        )

    class Boom(Exception):
        pass

    try:
        async with session.begin_nested():
            await write()
            await session.flush()
            assert await event_count(session) == 1  # written, inside the transaction
            raise Boom
    except Boom:
        pass
    assert await event_count(session) == 0

    async with session.begin_nested():
        await write()
    assert await event_count(session) == 1


async def test_a_status_change_is_an_event(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    household = world.households["a1"]
    url = f"{API}/households/{household.id}"
    headers = world.headers("officer_a1")

    other = await client.patch(
        url, json={"group_name": "三组"}, headers=headers | {"If-Match": '"v1"'}
    )
    assert other.status_code == 200, other.text
    changed = await client.patch(
        url, json={"status": "returned"}, headers=headers | {"If-Match": '"v2"'}
    )
    assert changed.status_code == 200, changed.text

    [event] = await events(session)
    assert event.type == "household.status_changed"
    assert event.household_id == household.id and event.region_code == VILLAGE_A1
    assert event.data == {
        "household_id": str(household.id),
        "status_from": "in_poverty",
        "status_to": "returned",
        "version": 3,
        "changed_by": str(world.users["officer_a1"].id),
    }


async def test_a_measure_is_completed_once(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    household = world.households["a1"]
    measure_id = uuid.uuid4()
    steps = [("in_progress", 60), ("done", 100), ("done", 100)]
    for revision, (status, pct) in enumerate(steps, start=1):
        body = measure_body(household.id, revision, status=status, progress_pct=pct)
        if revision == 3:
            body["details"] = "验收合格"
        response = await put(client, world, "measure", body, record_id=measure_id)
        assert response.status_code in (200, 201), response.text
    born_done = uuid.uuid4()
    response = await put(
        client,
        world,
        "measure",
        measure_body(household.id, status="done", progress_pct=100),
        record_id=born_done,
    )
    assert response.status_code == 201

    completed = await events(session, type="measure.completed")
    assert [e.data["measure_id"] for e in completed] == [str(measure_id), str(born_done)]
    assert completed[0].data["revision"] == 2
    assert completed[0].data["category"] == "housing_safety"


async def test_a_completed_measure_carries_its_title_scrubbed(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    """Payloads carry no personal data, whatever scopes the webhook's owner holds."""
    await listening(session, world)  # events are written while a webhook is active
    title = f"危房改造 户主{ID_HEAD_A1} 电话{PHONE_A1}"
    body = measure_body(world.households["a1"].id, title=title, status="done", progress_pct=100)
    assert (await put(client, world, "measure", body)).status_code == 201

    [completed] = await events(session, type="measure.completed")
    assert completed.data["title"] == "危房改造 户主110105********002X 电话138****1234"
    _no_personal_data(completed)


async def _snapshot(
    client: httpx.AsyncClient, world: World, year: int, wage: str, *, day: int = 10, **extra: Any
) -> uuid.UUID:
    snapshot_id = uuid.uuid4()
    body = snapshot_body(
        world.households["a1"].id,
        year=year,
        recorded_at=f"{year}-12-{day:02d}T15:00:00+08:00",
        wage_income=wage,
        **extra,
    )
    response = await put(client, world, "income_snapshot", body, record_id=snapshot_id)
    assert response.status_code == 201, response.text
    return snapshot_id


async def test_an_income_drop_is_a_risk_flag_when_it_appears(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
    high = await _snapshot(client, world, 2023, "30000.00")
    low = await _snapshot(client, world, 2024, "9000.00")  # a 70 % fall
    lower = await _snapshot(client, world, 2025, "3000.00")  # falls again: a new flag? no:

    flagged = await events(session, type="household.risk_flagged")
    # 2024 made income_drop appear; 2025 keeps it (the evidence moved on, the flag did not).
    assert len(flagged) == 1
    assert flagged[0].data == {
        "household_id": str(world.households["a1"].id),
        "flags": [{"code": "income_drop", "evidence": [str(high), str(low)]}],
        "cause": {"type": "income_snapshot", "id": str(low), "revision": 1},
    }
    assert lower


async def test_below_the_monitoring_threshold_is_a_risk_flag_of_lifted_households(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
    household = world.households["a1"]
    household.status = "lifted"
    session.add(PovertyThreshold(scope=COUNTY_A, year=2024, monitoring_threshold=700_000))
    await session.commit()

    above = await _snapshot(client, world, 2024, "24000.00")  # 8,000 a head: above
    # 6,500 a head, recorded later: below (and a fall of 19 %, no income_drop)
    below = await _snapshot(client, world, 2024, "19500.00", day=20)

    [flagged] = await events(session, type="household.risk_flagged")
    assert flagged.data["flags"] == [
        {"code": "below_monitoring_threshold", "evidence": [str(below)]},
    ]
    assert above


async def test_an_indicator_lost_is_a_risk_flag_when_it_appears(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
    household = world.households["a1"]

    async def visit(hours_ago: int, **checks: str) -> uuid.UUID:
        visit_id = uuid.uuid4()
        body = visit_body(household.id, visited_at=ago(hours=hours_ago), checks=checks)
        assert (await put(client, world, "visit", body, record_id=visit_id)).status_code == 201
        return visit_id

    ok = await visit(50, food="ok", water="ok")
    lost = await visit(40, food="not_ok", water="ok")  # food: ok → not_ok
    await visit(30, food="not_ok")  # still lost: nothing new
    await visit(45, water="not_ok")  # not the latest assessment of water
    first_water = await visit(20, water="not_ok", education="not_ok")  # water lost; education new

    flagged = await events(session, type="household.risk_flagged")
    assert [e.data["flags"] for e in flagged] == [
        [{"code": "indicator_lost", "evidence": [str(ok), str(lost)], "indicator": "food"}],
        [
            {
                "code": "indicator_lost",
                "evidence": [str(lost), str(first_water)],
                "indicator": "water",
            }
        ],
    ]
    assert flagged[0].data["cause"] == {"type": "visit", "id": str(lost), "revision": 1}


async def test_no_risk_is_read_while_no_webhook_is_active(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await _snapshot(client, world, 2023, "30000.00")
    await _snapshot(client, world, 2024, "3000.00")

    assert await events(session, type="household.risk_flagged") == []


async def test_a_batch_is_an_event_per_village_it_touched(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    a1, a2, b1 = (world.households[k] for k in ("a1", "a2", "b1"))
    body = {
        "batch_id": str(uuid.uuid4()),
        "device_id": "android-admin-a",
        "records": [
            {"type": "visit", "id": str(uuid.uuid4()), "revision": 1, "data": visit_body(a1.id)},
            {"type": "visit", "id": str(uuid.uuid4()), "revision": 1, "data": visit_body(a1.id)},
            {"type": "visit", "id": str(uuid.uuid4()), "revision": 1, "data": visit_body(a2.id)},
            {
                "type": "household",
                "id": str(a2.id),
                "base_version": 1,
                "changes": {"group_name": "二组"},
            },
            # Another county's household and garbage: rejected, counted in no village.
            {"type": "visit", "id": str(uuid.uuid4()), "revision": 1, "data": visit_body(b1.id)},
            {"type": "visit", "id": "not-a-uuid", "revision": 1, "data": {"household_id": 7}},
        ],
    }
    for record in body["records"]:
        if isinstance(record.get("data"), dict):
            record["data"].pop("revision", None)
    headers = world.headers("admin_a")

    response = await client.post(f"{API}/sync/batches", json=body, headers=headers)
    assert response.status_code == 200, response.text
    replay = await client.post(f"{API}/sync/batches", json=body, headers=headers)
    assert replay.headers["idempotent-replay"] == "true"

    received = await events(session, type="sync.batch_received")
    assert [(e.region_code, e.household_id) for e in received] == [
        (VILLAGE_A1, None),
        (VILLAGE_A2, None),
    ]
    assert received[0].data == {
        "batch_id": body["batch_id"],
        "device_id": "android-admin-a",
        "user_id": str(world.users["admin_a"].id),
        "received_at": response.json()["received_at"],
        "village_code": VILLAGE_A1,
        "households": 1,
        "records": 2,
        "counts": {"created": 2},
    }
    assert received[1].data["counts"] == {"created": 1, "updated": 1}
    # The visits of the batch are events too, after nothing of another county.
    created = await events(session, type="visit.created")
    assert {e.household_id for e in created} == {a1.id, a2.id}


async def test_a_batch_naming_no_household_of_yours_is_no_event(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    body = {
        "batch_id": str(uuid.uuid4()),
        "device_id": "android-officer-a1",
        "records": [
            {
                "type": "visit",
                "id": str(uuid.uuid4()),
                "revision": 1,
                "data": {**visit_body(world.households["a2"].id), "revision": None},
            }
        ],
    }
    body["records"][0]["data"].pop("revision")
    response = await client.post(
        f"{API}/sync/batches", json=body, headers=world.headers("officer_a1")
    )
    assert response.status_code == 200
    assert response.json()["counts"]["rejected"] == 1
    assert await events(session) == []


async def test_events_carry_the_time_they_happened(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    before = utcnow()
    await put(client, world, "visit", visit_body(world.households["a1"].id))
    [event] = await events(session)
    assert before - timedelta(seconds=1) <= event.occurred_at <= utcnow()
