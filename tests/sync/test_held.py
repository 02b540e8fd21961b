"""Held records: a village taken from an officer between two batches loses nothing of theirs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.records.models import Visit
from app.sync.models import HeldRecord
from app.users.models import Role
from tests.assertions import problem
from tests.auth.test_tokens import me_status
from tests.builders import VILLAGE_A1, VILLAGE_A2, VILLAGE_A3, World, make_user, token_for
from tests.records.bodies import measure_body, snapshot_body, visit_body
from tests.sync.feed_helpers import Replica
from tests.sync.helpers import API, batch, count, phone_headers, record, send, sent_ok

HELD = f"{API}/sync/held"
HELD_REASON = "王庄村（371522101201）已不再分配给您：记录已暂存，等待县扶贫信息中心接收或退回"


async def _take_village_a1(client: httpx.AsyncClient, world: World) -> None:
    """The county admin moves officer_a1 from village A1 to A3 (API)."""
    response = await client.put(
        f"{API}/users/{world.users['officer_a1'].id}/regions",
        json={"regions": [VILLAGE_A3]},
        headers=world.headers("admin_a"),
    )
    assert response.status_code == 200, response.text


async def _held_page(
    client: httpx.AsyncClient, world: World, who: str = "admin_a", **params: str
) -> list[dict[str, Any]]:
    response = await client.get(HELD, headers=world.headers(who), params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_acceptance_a_village_taken_between_two_batches_loses_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    phone = await phone_headers(session, world, "officer_a1")
    a1, a2, b1 = (world.households[k].id for k in ("a1", "a2", "b1"))
    first_visit = uuid.uuid4()
    first = await sent_ok(client, batch([record("visit", first_visit, visit_body(a1))]), phone)
    assert first["results"][0]["status"] == "created"
    # The officer who takes the village over.
    successor = await make_user(
        session, username="officer.successor", role=Role.officer, regions=[VILLAGE_A1]
    )
    successor_phone = {"Authorization": f"Bearer {await token_for(session, successor)}"}

    await _take_village_a1(client, world)

    ids = {name: uuid.uuid4() for name in ("visit", "snapshot", "measure", "b1", "a2")}
    records = [
        record("visit", ids["visit"], visit_body(a1, findings="离任前最后一次入户")),
        record("income_snapshot", ids["snapshot"], snapshot_body(a1)),
        record("measure", ids["measure"], measure_body(a1)),
        record("visit", first_visit, visit_body(a1, 2, findings="补充说明")),
        record("visit", ids["b1"], visit_body(b1)),  # another county: refused, as before
        record("visit", ids["a2"], visit_body(a2)),  # a village never theirs: refused
    ]
    second_body = batch(records)
    # The same login goes on working: no new password, no new login.
    second = await sent_ok(client, second_body, phone)

    results = second["results"]
    assert [r["status"] for r in results] == ["held"] * 4 + ["rejected"] * 2
    assert second["counts"]["held"] == 4 and second["counts"]["rejected"] == 2
    for result in results[:4]:
        assert result["code"] == "village_unassigned" and result["retryable"] is False
        assert result["reason"] == HELD_REASON
        assert result["held_id"]
    assert [r["code"] for r in results[4:]] == ["household_not_found"] * 2
    assert "held_id" not in results[4] and "reason" not in results[4]
    assert await count(session, HeldRecord) == 4

    # Retried: the stored answer; sent again in a new batch: the same held record.
    replay = await send(client, second_body, phone)
    assert replay.headers["Idempotent-Replay"] == "true" and replay.json() == second
    again = await sent_ok(client, batch([records[0]]), phone)
    assert again["results"][0]["status"] == "held"
    assert again["results"][0]["held_id"] == results[0]["held_id"]
    assert await count(session, HeldRecord) == 4

    # The county admin sees them whole; other callers do not.
    held = await _held_page(client, world, region=VILLAGE_A1)
    assert {h["id"] for h in held} == {r["held_id"] for r in results[:4]}
    by_record = {h["record_id"]: h for h in held}
    visit = by_record[str(ids["visit"])]
    assert visit["data"]["findings"] == "离任前最后一次入户"
    assert visit["author"]["id"] == str(world.users["officer_a1"].id)
    assert (visit["batch_id"], visit["status"]) == (second["batch_id"], "held")
    assert visit["reason"] == HELD_REASON and visit["device_id"] == "android-phone-a1"
    assert await _held_page(client, world, "admin_b") == []
    assert await _held_page(client, world, region=VILLAGE_A2) == []
    for who in ("officer_a1", "secretary_a1", "town_a1"):
        response = await client.get(HELD, headers=world.headers(who))
        problem(response, 403, "forbidden")

    # Accepted under the successor: a real record of theirs, in their change feed.
    accepted = await client.post(
        f"{HELD}/{visit['id']}/accept",
        json={"author_id": str(successor.id)},
        headers=world.headers("admin_a"),
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert (body["outcome"], body["version"]) == ("created", 1)
    assert body["held"]["status"] == "accepted"
    assert body["held"]["accepted_author_id"] == str(successor.id)
    assert body["held"]["decided_by"] == str(world.users["admin_a"].id)
    stored = await client.get(f"{API}/visits/{ids['visit']}", headers=successor_phone)
    assert stored.status_code == 200, stored.text
    assert stored.json()["findings"] == "离任前最后一次入户"
    assert stored.json()["author_id"] == str(successor.id)
    feed = Replica()
    await feed.sync(client, successor_phone)
    assert ("visit", str(ids["visit"])) in feed.objects

    # Someone not assigned the village cannot be made its author.
    measure = by_record[str(ids["measure"])]
    problem(
        await client.post(
            f"{HELD}/{measure['id']}/accept",
            json={"author_id": str(world.users["officer_a2"].id)},
            headers=world.headers("admin_a"),
        ),
        422,
        "validation_failed",
        "body.author_id",
    )
    # Omitted: the admin is the author. The update of a stored record follows the revisions.
    update = by_record[str(first_visit)]
    updated = await client.post(
        f"{HELD}/{update['id']}/accept", json={}, headers=world.headers("admin_a")
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["outcome"], updated.json()["version"]) == ("updated", 2)
    row = await session.get(Visit, first_visit, populate_existing=True)
    assert row is not None and (row.revision, row.findings) == (2, "补充说明")

    # Discarded with a reason; a decided one cannot be decided again.
    snapshot = by_record[str(ids["snapshot"])]
    problem(
        await client.post(
            f"{HELD}/{snapshot['id']}/discard",
            json={"reason": " "},
            headers=world.headers("admin_a"),
        ),
        422,
        "validation_failed",
        "body.reason",
    )
    discarded = await client.post(
        f"{HELD}/{snapshot['id']}/discard",
        json={"reason": "该户收入已由新信息员重新核算"},
        headers=world.headers("admin_a"),
    )
    assert discarded.status_code == 200, discarded.text
    assert (discarded.json()["status"], discarded.json()["note"]) == (
        "discarded",
        "该户收入已由新信息员重新核算",
    )
    for url, payload in (
        (f"{HELD}/{snapshot['id']}/accept", {}),
        (f"{HELD}/{visit['id']}/discard", {"reason": "重复"}),
    ):
        problem(
            await client.post(url, json=payload, headers=world.headers("admin_a")),
            409,
            "held_record_decided",
        )
    problem(
        await client.post(
            f"{HELD}/{measure['id']}/discard",
            json={"reason": "x"},
            headers=world.headers("admin_b"),
        ),
        404,
        "held_record_not_found",
    )
    await client.post(
        f"{HELD}/{measure['id']}/accept",
        json={"author_id": str(successor.id)},
        headers=world.headers("admin_a"),
    )

    # Nothing lost: every item of batch 2 is a stored record or a decided held record.
    assert await _held_page(client, world) == []
    decided = {
        h["record_id"]: h
        for state in ("accepted", "discarded")
        for h in await _held_page(client, world, status=state)
    }
    for item, result in zip(records, results, strict=True):
        if result["status"] == "rejected":
            continue
        decision = decided[item["id"]]
        if decision["status"] == "accepted":
            url = {"visit": "visits", "measure": "measures"}[item["type"]]
            response = await client.get(
                f"{API}/{url}/{item['id']}", headers=world.headers("admin_a")
            )
            assert response.status_code == 200, response.text
            assert response.json()["revision"] == item["revision"]
        else:
            assert decision["status"] == "discarded" and decision["note"]
    assert {d["status"] for d in decided.values()} == {"accepted", "discarded"}
    assert await me_status(client, phone["Authorization"].removeprefix("Bearer ")) == 200


async def test_a_held_record_that_clashes_stays_held(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """Accepting goes through the revision rule: other content at the same revision is a 409
    and nothing is written; the record stays held for a decision."""
    phone = await phone_headers(session, world, "officer_a1")
    a1 = world.households["a1"].id
    visit_id = uuid.uuid4()
    await sent_ok(
        client, batch([record("visit", visit_id, visit_body(a1, findings="原文"))]), phone
    )
    await _take_village_a1(client, world)
    answer = await sent_ok(
        client, batch([record("visit", visit_id, visit_body(a1, findings="改过"))]), phone
    )
    [result] = answer["results"]
    assert result["status"] == "held"

    clash = problem(
        await client.post(
            f"{HELD}/{result['held_id']}/accept", json={}, headers=world.headers("admin_a")
        ),
        409,
        "held_record_clash",
    )
    assert (clash["outcome"], clash["version"]) == ("conflict", 1)
    row = await session.get(Visit, visit_id, populate_existing=True)
    assert row is not None and row.findings == "原文"
    [still] = await _held_page(client, world)
    assert still["id"] == result["held_id"]


async def test_without_a_reassignment_a_household_elsewhere_is_refused_as_before(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """Only a village taken from the author holds records: nothing held, no existence leaked."""
    phone = await phone_headers(session, world, "officer_a2")
    a1 = world.households["a1"].id
    answer = await sent_ok(client, batch([record("visit", uuid.uuid4(), visit_body(a1))]), phone)
    [result] = answer["results"]
    assert (result["status"], result["code"]) == ("rejected", "household_not_found")
    assert await count(session, HeldRecord, col(HeldRecord.household_id) == a1) == 0
