"""Monitoring cases and alerts in sync: a case opened offline comes up in a batch (with a visit),
once whatever the network does; cases and alerts go down the change feed to their village."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.base import utcnow
from app.households.models import Member
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.records.models import Visit
from app.sync import changelog
from app.sync.models import Change
from tests.assertions import problem
from tests.builders import COUNTY_A, VILLAGE_A1, VILLAGE_A2, World, make_household
from tests.monitoring.case_helpers import case_body, make_alert, put_case, take, taken
from tests.records.bodies import visit_body
from tests.sync.feed_helpers import Replica
from tests.sync.helpers import batch, count, phone_headers, record, send, table_counts


async def test_a_case_and_a_visit_in_one_batch_applied_once(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await make_household(
        session, village=VILLAGE_A1, origin="ordinary", members=[{"relation": "head"}]
    )
    alert = await make_alert(session, world, household)
    headers = await phone_headers(session, world, "officer_a1")
    case_id, visit_id = uuid.uuid4(), uuid.uuid4()
    body = batch(
        [
            record("visit", visit_id, visit_body(household.id)),
            record(
                "monitoring_case",
                case_id,
                case_body(
                    household.id,
                    category="marginal",
                    found_via="department_alert",
                    alert_id=str(alert.id),
                ),
            ),
        ]
    )
    first = await send(client, body, headers)
    assert first.status_code == 200, first.text
    assert [(r["type"], r["status"], r["version"]) for r in first.json()["results"]] == [
        ("visit", "created", 1),
        ("monitoring_case", "created", 1),
    ]
    case = await session.get(MonitoringCase, case_id)
    assert case is not None and case.status == "proposed"
    assert case.device_id == "android-phone-a1" and case.open_household_id == household.id
    after_first = {**await table_counts(session), "cases": await count(session, MonitoringCase)}

    again = await send(client, body, headers)
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json() == first.json()
    assert {**await table_counts(session), "cases": await count(session, MonitoringCase)} == (
        after_first
    )

    # The same records in a new batch (the answer was lost and the phone rebuilt it).
    rebuilt = await send(client, {**body, "batch_id": str(uuid.uuid4())}, headers)
    assert [r["status"] for r in rebuilt.json()["results"]] == ["unchanged", "unchanged"]
    assert await count(session, MonitoringCase) == 1 and await count(session, Visit) == 1


async def test_a_refused_case_in_a_batch_leaves_the_rest_applied(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]  # registered, in poverty
    open_case = await put_case(client, world, case_body(household.id))
    assert open_case.status_code == 201
    headers = await phone_headers(session, world, "officer_a1")
    visit_id = uuid.uuid4()
    ordinary = await make_household(session, village=VILLAGE_A1, origin="ordinary")
    answer = await send(
        client,
        batch(
            [
                record("monitoring_case", uuid.uuid4(), case_body(household.id)),
                record("visit", visit_id, visit_body(household.id)),
                record("monitoring_case", uuid.uuid4(), case_body(household.id, category="x")),
                record(
                    "monitoring_case",
                    uuid.uuid4(),
                    case_body(ordinary.id, category="unstable_lifted"),
                ),
                record("monitoring_case", uuid.uuid4(), case_body(ordinary.id)),
                # A second case of the same household in the same batch.
                record("monitoring_case", uuid.uuid4(), case_body(ordinary.id)),
            ]
        ),
        headers,
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [
        "rejected", "created", "rejected", "rejected", "created", "rejected",
    ]  # fmt: skip
    assert results[0]["code"] == "case_open" and open_case.json()["id"] in results[0]["detail"]
    assert results[2]["errors"][0]["field"] == "records.2.data.category"
    assert results[3]["errors"][0]["field"] == "records.3.data.category"
    assert results[5]["code"] == "case_open" and results[4]["id"] in results[5]["detail"]
    assert answer.json()["counts"]["rejected"] == 4
    assert await session.get(Visit, visit_id) is not None
    assert await count(session, MonitoringCase) == 2


async def test_the_feed_carries_a_case_with_its_status_and_steps(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    phone = Replica()
    headers = await phone_headers(session, world, "officer_a1")
    other = Replica()
    other_headers = await phone_headers(session, world, "officer_a2", device_id="android-a2")
    await phone.sync(client, headers)
    await other.sync(client, other_headers)

    case_id = uuid.uuid4()
    created = await put_case(client, world, case_body(world.households["a1"].id), case_id=case_id)
    assert created.status_code == 201
    entries = await phone.sync(client, headers)
    key = ("monitoring_case", str(case_id))
    assert [(e["type"], e["id"], e["op"], e["version"]) for e in entries] == [(*key, "upsert", 1)]
    data = phone.objects[key]["data"]
    assert data["status"] == "proposed" and data["steps"] == []
    assert data["household_id"] == str(world.households["a1"].id)

    # A step changes the case: it comes again, with its new status and the step.
    await taken(client, world, case_id, "village_review", "town_review")
    entries = await phone.sync(client, headers)
    assert [(e["type"], e["id"]) for e in entries] == [key]
    data = phone.objects[key]["data"]
    assert data["status"] == "town_reviewed" and data["revision"] == 1
    assert [s["step"] for s in data["steps"]] == ["village_review", "town_review"]
    assert data["steps"][1]["actor_role"] == "town_staff"
    # A refused step moves nothing.
    problem(await take(client, world, case_id, "town_review"), 409, "step_out_of_order")
    assert await phone.sync(client, headers) == []

    # Another village's phone never sees it.
    assert key not in {(e["type"], e["id"]) for e in await other.sync(client, other_headers)}
    assert await count(session, Change, col(Change.entity_type) == "monitoring_case") == 1


async def test_the_feed_carries_alerts_to_their_village(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    secretary = await phone_headers(session, world, "secretary_a1", device_id="android-s1")
    other_headers = await phone_headers(session, world, "officer_a2", device_id="android-a2")
    phone, masked, other = Replica(), Replica(), Replica()
    for replica, h in [(phone, headers), (masked, secretary), (other, other_headers)]:
        await replica.sync(client, h)

    alert = await make_alert(session, world, world.households["a1"], note="电话 13805351234")
    entries = await phone.sync(client, headers)
    key = ("monitoring_alert", str(alert.id))
    assert [(e["type"], e["id"], e["op"], e["version"]) for e in entries] == [(*key, "upsert", 1)]
    data = phone.objects[key]["data"]
    assert data["id"] == str(alert.id) and data["revision"] == 1
    assert data["household_id"] == str(world.households["a1"].id)
    assert "13805351234" not in str((await masked.sync(client, secretary))[0]["data"])
    assert await other.sync(client, other_headers) == []

    # A change of the alert (its revision goes up) moves it again.
    alert.status = "verified"
    alert.outcome = "no_risk"
    alert.revision = 2
    await session.flush()
    entries = await phone.sync(client, headers)
    assert [(e["id"], e["version"]) for e in entries] == [(str(alert.id), 2)]
    assert phone.objects[key]["data"]["status"] == "verified"

    # Moved to another village (its column changed): deleted here, delivered there.
    alert.village_code = VILLAGE_A2
    alert.revision = 3
    await session.flush()
    assert [(e["op"], e["id"]) for e in await phone.sync(client, headers)] == [
        ("delete", str(alert.id))
    ]
    assert [(e["op"], e["id"]) for e in await other.sync(client, other_headers)] == [
        ("upsert", str(alert.id))
    ]


async def test_alerts_written_by_a_core_insert_are_logged_with_log_inserted(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    phone = Replica()
    await phone.sync(client, headers)
    household = world.households["a1"]
    member = await session.scalar(
        select(Member).where(col(Member.household_id) == household.id).limit(1)
    )
    assert member is not None
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(MonitoringAlert)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "county_code": COUNTY_A,
        "department": "civil_affairs",
        "id_number_hash": "h" * 64,
        "kind": "assistance_granted",
        "occurred_on": date(2026, 10, 1),
        "household_id": household.id,
        "member_id": member.id,
        "village_code": household.village_code,
        "status": "open",
        "revision": 1,
        "imported_at": utcnow(),
        "imported_by": world.users["admin_a"].id,
    }
    second = {**values, "id": uuid.uuid4(), "kind": "job_loss", "department": "human_resources"}
    rows = (
        await session.execute(
            insert.values([values, second]).returning(
                col(MonitoringAlert.id),
                col(MonitoringAlert.household_id),
                col(MonitoringAlert.village_code),
                col(MonitoringAlert.revision),
            )
        )
    ).all()
    await changelog.log_inserted(session, changelog.MONITORING_ALERT, [tuple(r) for r in rows])
    entries = await phone.sync(client, headers)
    assert {(e["type"], e["id"], e["version"]) for e in entries} == {
        ("monitoring_alert", str(values["id"]), 1),
        ("monitoring_alert", str(second["id"]), 1),
    }
    assert {e["data"]["kind"] for e in entries} == {"assistance_granted", "job_loss"}
