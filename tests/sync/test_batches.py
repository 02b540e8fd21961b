"""POST /sync/batches: ACCEPTANCE 1 over a lossy network, every result, idempotency, atomicity,
limits, missing photos and the device a batch comes from."""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from app.core.base import utcnow
from app.devices.models import Device
from app.households.models import Household
from app.photos.models import Photo, PhotoRef
from app.records import service as records_service
from app.records.models import IncomeSnapshot, Measure, MeasureRevision, Visit
from app.sync.models import Change, SyncBatch
from tests.assertions import problem
from tests.builders import VILLAGE_A1, World, make_household
from tests.records.bodies import (
    BODIES,
    SEGMENTS,
    ago,
    measure_body,
    parse,
    snapshot_body,
    visit_body,
)
from tests.sync.helpers import (
    API,
    BATCHES,
    CHANGES,
    DEVICE,
    MODELS,
    batch,
    count,
    household_edit,
    phone_headers,
    record,
    send,
    sent_ok,
    table_counts,
)

SHA_A = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA_B = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
SHA_C = "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"


async def stored(session: AsyncSession, record_type: str, record_id: str | uuid.UUID) -> Any:
    """The record as the database holds it now (not as the test's identity map remembers it)."""
    model = MODELS[record_type]
    return await session.scalar(
        select(model)
        .where(col(model.id) == uuid.UUID(str(record_id)))
        .execution_options(populate_existing=True)
    )


# --- ACCEPTANCE 1: a phone syncing 1,000 records over a network that loses things ------------


class LossyNetwork(httpx.AsyncBaseTransport):
    """Loses a request before it reaches the server, or the answer after the server acted on it."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        seed: int,
        lose_request: float,
        lose_response: float,
    ) -> None:
        self.inner = inner
        self.rng = random.Random(seed)
        self.lose_request = lose_request
        self.lose_response = lose_response
        self.lost_requests = 0
        self.lost_responses = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.lose_request:
            self.lost_requests += 1
            raise httpx.ConnectError("no signal", request=request)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if roll < self.lose_request + self.lose_response:
            await response.aclose()
            self.lost_responses += 1
            raise httpx.ReadTimeout("the answer never arrived", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Phone:
    """Retries each request until an answer arrives, as the app does."""

    def __init__(self, client: httpx.AsyncClient, network: LossyNetwork) -> None:
        self.client = client
        self.network = network
        self.replays = 0

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        reached_server = False
        for _ in range(100):
            lost_before = self.network.lost_responses
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TransportError:
                reached_server |= self.network.lost_responses > lost_before
                continue
            assert response.status_code == 200, response.text
            if method == "POST":
                # The answer to a batch the server already applied is its stored answer.
                replayed = response.headers.get("Idempotent-Replay") == "true"
                assert replayed == reached_server, (replayed, reached_server)
                self.replays += replayed
            return response
        raise AssertionError(f"{method} {url}: no answer after 100 attempts")


def phone_records(
    household_ids: list[uuid.UUID], rng: random.Random, n: int
) -> list[dict[str, Any]]:
    """n records of every type, spread over the households, as the phone recorded them."""
    out = []
    for i in range(n):
        household_id = rng.choice(household_ids)
        record_type = ("visit", "income_snapshot", "measure")[i % 3]
        if record_type == "visit":
            body = visit_body(household_id, findings=f"第{i}次走访", visited_at=ago(hours=i))
        elif record_type == "income_snapshot":
            body = snapshot_body(
                household_id, year=2016 + i % 9, wage_income=f"{rng.randrange(10**6)}.{i % 100:02d}"
            )
        else:
            body = measure_body(household_id, title=f"帮扶措施 {i}", progress_pct=i % 101)
        out.append(record(record_type, uuid.uuid4(), body))
    return out


@pytest.mark.slow
async def test_acceptance_1000_records_over_a_lossy_network_are_stored_once(
    app: FastAPI, session: AsyncSession, world: World
) -> None:
    households = [world.households["a1"].id]
    for _ in range(20):
        households.append((await make_household(session, village=VILLAGE_A1)).id)
    headers = await phone_headers(session, world, "officer_a1")
    rng = random.Random(20261120)
    records = phone_records(households, rng, 1000)
    network = LossyNetwork(
        httpx.ASGITransport(app=app), seed=7, lose_request=0.25, lose_response=0.25
    )
    async with httpx.AsyncClient(
        transport=network, base_url="http://test", headers=headers
    ) as client:
        phone = Phone(client, network)
        answers: list[dict[str, Any]] = []
        outbox = [records[i : i + 100] for i in range(0, len(records), 100)]
        # The app restarted having lost its bookkeeping of one batch: it sends those records
        # again in a new batch.
        outbox.append(outbox[3])
        for chunk in outbox:
            body = batch(chunk)
            answer = (await phone.request("POST", BATCHES, json=body)).json()
            assert answer["batch_id"] == body["batch_id"]
            assert [(r["type"], r["id"]) for r in answer["results"]] == [
                (r["type"], r["id"]) for r in chunk
            ]
            answers.append(answer)

        # The network did lose both ways, and the retries after a lost answer were replays.
        assert network.lost_requests > 0 and network.lost_responses > 0
        assert phone.replays > 0

        # Each record was created by the first application of its batch, then only recognised.
        statuses: dict[str, list[str]] = {}
        for answer in answers:
            for result in answer["results"]:
                statuses.setdefault(result["id"], []).append(result["status"])
                assert result["version"] == 1
        resent = {r["id"] for r in outbox[3]}
        assert len(statuses) == 1000
        for record_id, seen in statuses.items():
            assert seen == (["created", "unchanged"] if record_id in resent else ["created"])
        assert [a["counts"]["created"] for a in answers] == [100] * 10 + [0]
        assert answers[-1]["counts"]["unchanged"] == 100

        # The server holds exactly the 1,000 records, each once, as sent.
        sent = Counter((r["type"], r["id"]) for r in records)
        held: Counter[tuple[str, str]] = Counter()
        for record_type, model in MODELS.items():
            for held_id in await session.scalars(select(col(model.id))):
                held[(record_type, str(held_id))] += 1
        assert held == sent
        assert await count(session, MeasureRevision) == sum(r["type"] == "measure" for r in records)
        officer = world.users["officer_a1"].id
        for model in (Visit, IncomeSnapshot, Measure):
            authors = set(await session.scalars(select(col(model.author_id)).distinct()))
            devices = set(await session.scalars(select(col(model.device_id)).distinct()))
            assert (authors, devices) == ({officer}, {DEVICE})
        some = rng.sample(records, 30)
        for item in some:
            row = await stored(session, item["type"], item["id"])
            assert str(row.household_id) == item["data"]["household_id"]
        batches = list(await session.scalars(select(SyncBatch)))
        assert sorted(str(b.id) for b in batches) == sorted(a["batch_id"] for a in answers)
        assert all(b.record_count == 100 and b.device_id == DEVICE for b in batches)
        # Replayed or not, each answer the phone kept is the one the server stored.
        for answer in answers:
            kept = await phone.request("GET", f"{BATCHES}/{answer['batch_id']}")
            assert kept.json() == answer

        # The phone downloads its villages and sees exactly what the database holds.
        view: dict[tuple[str, str], int] = {}
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 300}
            if cursor is not None:
                params["cursor"] = cursor
            page = (await phone.request("GET", CHANGES, params=params)).json()
            pages += 1
            for change in page["changes"]:
                key = (change["type"], change["id"])
                assert key not in view, f"{key} delivered twice"
                assert change["op"] == "upsert"
                view[key] = change["version"]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert pages >= 4

    expected: dict[tuple[str, str], int] = {}
    for record_type, model in MODELS.items():
        rows = await session.execute(
            select(col(model.id), col(model.revision))
            .join(Household, col(Household.id) == col(model.household_id))
            .where(col(Household.village_code) == VILLAGE_A1)
        )
        expected.update({(record_type, str(i)): revision for i, revision in rows})
    rows = await session.execute(
        select(col(Household.id), col(Household.version)).where(
            col(Household.village_code) == VILLAGE_A1
        )
    )
    expected.update({("household", str(i)): version for i, version in rows})
    assert len(expected) == 1000 + 21
    assert view == expected


# --- every result of a record, in one batch ---------------------------------------------------


async def test_every_status_in_one_batch_and_one_bad_record_blocks_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    a1, a2 = world.households["a1"].id, world.households["a2"].id
    ids = {name: uuid.uuid4() for name in ("same", "edit", "old", "clash", "new", "snap", "meas")}
    bodies = {
        "same": visit_body(a1, findings="一切正常"),
        "edit": visit_body(a1, findings="初稿"),
        "old": visit_body(a1, 2, findings="第二版"),
        "clash": visit_body(a1, findings="原文"),
    }
    first = await sent_ok(
        client, batch([record("visit", ids[k], body) for k, body in bodies.items()]), headers
    )
    assert [r["status"] for r in first["results"]] == ["created"] * 4
    clash_before = await stored(session, "visit", ids["clash"])
    clash_hash = clash_before.content_hash
    before = await table_counts(session)

    rejected_ids = [uuid.uuid4() for _ in range(7)]
    records = [
        record("visit", ids["same"], bodies["same"]),  # 0 unchanged
        record("visit", ids["edit"], {**bodies["edit"], "revision": 2, "findings": "定稿"}),
        record("visit", ids["old"], {**bodies["old"], "revision": 1}),  # 2 stale
        record("visit", ids["clash"], {**bodies["clash"], "findings": "改过"}),  # 3 conflict
        record("visit", ids["new"], visit_body(a1)),  # 4 created
        record("visit", rejected_ids[0], visit_body(a1, mode="walk")),  # 5 bad field
        {**record("visit", rejected_ids[1], visit_body(a1)), "type": "selfie"},  # 6
        {**record("visit", rejected_ids[2], visit_body(a1)), "id": "not-a-uuid"},  # 7
        {**record("visit", rejected_ids[3], visit_body(a1)), "revision": None},  # 8 no revision
        record("visit", rejected_ids[4], visit_body(a2)),  # 9 another village's household
        record("income_snapshot", ids["snap"], snapshot_body(a1)),  # 10 created
        {**record("visit", rejected_ids[5], visit_body(a1)), "data": "visit"},  # 11
        record("visit", rejected_ids[6], visit_body(a1, 0)),  # 12 revision 0
        record("measure", ids["meas"], measure_body(a1)),  # 13 created
    ]  # fmt: skip
    answer = await sent_ok(client, batch(records), headers)
    results = answer["results"]
    assert [r["status"] for r in results] == [
        "unchanged",
        "updated",
        "stale",
        "conflict",
        "created",
        *["rejected"] * 5,
        "created",
        "rejected",
        "rejected",
        "created",
    ]
    assert answer["counts"] == {
        "created": 3,
        "updated": 1,
        "unchanged": 1,
        "stale": 1,
        "conflict": 1,
        "rejected": 7,
        "held": 0,
    }
    assert [r["type"] for r in results] == [r["type"] for r in records]
    assert [r["id"] for r in results] == [r["id"] for r in records]
    assert [r.get("version") for r in results[:5]] == [1, 2, 2, 1, 1]
    assert results[2]["code"] == "stale_revision"
    assert results[3]["code"] == "revision_conflict"
    for i in (5, 6, 7, 8, 11, 12):
        assert results[i]["code"] == "validation_failed", results[i]
        assert results[i]["retryable"] is False
        assert results[i]["detail"]
    expected_fields = {
        5: "records.5.data.mode",
        6: "records.6.type",
        7: "records.7.id",
        8: "records.8.revision",
        9: "records.9.data.household_id",
        11: "records.11.data",
        12: "records.12.revision",
    }
    for i, field in expected_fields.items():
        assert field in [e["field"] for e in results[i]["errors"]], results[i]
    assert results[9]["code"] == "household_not_found"
    assert results[9]["retryable"] is False
    assert "errors" not in results[0] and "code" not in results[4]

    # The database holds what the results say, and nothing of the rejected records.
    edited = await stored(session, "visit", ids["edit"])
    assert (edited.revision, edited.findings) == (2, "定稿")
    old = await stored(session, "visit", ids["old"])
    assert (old.revision, old.findings) == (2, "第二版")
    clash = await stored(session, "visit", ids["clash"])
    assert (clash.revision, clash.findings, clash.content_hash) == (1, "原文", clash_hash)
    for record_type, key in (("visit", "new"), ("income_snapshot", "snap"), ("measure", "meas")):
        row = await stored(session, record_type, ids[key])
        assert row.author_id == world.users["officer_a1"].id and row.device_id == DEVICE
    for rejected_id in rejected_ids:
        assert await count(session, Visit, col(Visit.id) == rejected_id) == 0
    after = await table_counts(session)
    assert after["visit"] == before["visit"] + 1
    assert after["income_snapshot"] == before["income_snapshot"] + 1
    assert after["measure"] == before["measure"] + 1
    assert after["measure_revision"] == before["measure_revision"] + 1
    row = await session.get(SyncBatch, uuid.UUID(answer["batch_id"]))
    assert row is not None and row.response == answer
    assert (row.record_count, row.created, row.updated, row.unchanged) == (14, 3, 1, 1)
    assert (row.stale, row.conflict, row.rejected) == (1, 1, 7)


async def test_one_record_twice_in_a_batch_is_judged_in_order(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """A phone that edited a record twice offline sends both revisions, oldest first."""
    headers = await phone_headers(session, world, "officer_a1")
    record_id = uuid.uuid4()
    first = visit_body(world.households["a1"].id, findings="初稿")
    items = [
        record("visit", record_id, first),
        record("visit", record_id, first),
        record("visit", record_id, {**first, "revision": 2, "findings": "定稿"}),
        record("visit", record_id, first),
    ]
    answer = await sent_ok(client, batch(items), headers)
    assert [(r["status"], r["version"]) for r in answer["results"]] == [
        ("created", 1),
        ("unchanged", 1),
        ("updated", 2),
        ("stale", 2),
    ]
    visit = await stored(session, "visit", record_id)
    assert (visit.revision, visit.findings) == (2, "定稿")
    assert await count(session, Visit, col(Visit.id) == record_id) == 1


async def test_a_record_conflict_says_it_is_not_retryable(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """The documented result of a conflict has code, retryable and detail, like a rejection."""
    headers = await phone_headers(session, world, "officer_a1")
    record_id = uuid.uuid4()
    body = visit_body(world.households["a1"].id)
    await sent_ok(client, batch([record("visit", record_id, body)]), headers)
    answer = await sent_ok(
        client, batch([record("visit", record_id, {**body, "findings": "另一版本"})]), headers
    )
    [result] = answer["results"]
    assert result["status"] == "conflict"
    assert result["code"] == "revision_conflict" and result["detail"]
    assert result.get("retryable") is False


# (record type, changes to a valid body) that the single endpoints refuse
BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("visit", {"mode": "walk"}),
    ("visit", {"mode": None}),
    ("visit", {"visited_at": "2026-11-20T09:30:00"}),
    ("visit", {"visited_at": None}),
    ("visit", {"visited_at": ago(days=-1)}),  # in the future
    ("visit", {"household_id": "a1"}),
    ("visit", {"household_id": str(uuid.uuid4())}),  # unknown household
    ("visit", {"location": {"lat": 91, "lon": 115.6}}),
    ("visit", {"location": {"lat": 36.2}}),
    ("visit", {"checks": {"food": "fine"}}),
    ("visit", {"photos": [{"sha256": "abc", "tag": "before"}]}),
    ("visit", {"photos": [{"sha256": SHA_A, "tag": "selfie"}]}),
    ("visit", {"address": "地" * 501}),
    ("visit", {"author_id": str(uuid.uuid4())}),
    ("visit", {"mode": "walk", "findings": "记" * 10_001, "flags": []}),  # three at once
    ("visit", {"findings": "a\u0000b"}),
    ("income_snapshot", {"kind": "weekly", "household_size": 0}),
    ("income_snapshot", {"wage_income": "0.001"}),
    ("income_snapshot", {"recorded_at": ago(days=-1)}),
    ("measure", {"category": "magic"}),
    ("measure", {"start_date": "2026-05-01", "due_date": "2026-04-01"}),
    ("measure", {"progress_reports": [{"reported_at": ago(days=-1), "progress_pct": 5}]}),
    ("measure", {"progress_reports": [{"reported_at": ago(days=1), "progress_pct": 101}]}),
]


async def test_a_rejected_record_names_the_same_errors_as_the_single_endpoint(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    a1 = world.households["a1"].id
    bodies = []
    for record_type, changes in BAD_BODIES:
        body = {**BODIES[record_type](a1), **changes}
        bodies.append(
            (record_type, {k: v for k, v in body.items() if v is not None or k in changes})
        )
    good = record("visit", uuid.uuid4(), visit_body(a1))
    items = [record(t, uuid.uuid4(), body) for t, body in bodies]
    before = await table_counts(session)
    answer = await sent_ok(client, batch([*items, good]), headers)
    assert answer["results"][-1]["status"] == "created"
    assert answer["counts"]["rejected"] == len(BAD_BODIES)

    for i, ((record_type, body), result) in enumerate(zip(bodies, answer["results"], strict=False)):
        single = await client.put(
            f"{API}/{SEGMENTS[record_type]}/{uuid.uuid4()}", json=body, headers=headers
        )
        assert single.status_code in (404, 422), single.text
        expected = single.json()
        assert result["status"] == "rejected", result
        assert result["code"] == expected["code"], (i, result, expected)
        assert result["retryable"] == expected["retryable"]
        renamed = sorted(
            (f"records.{i}.data." + e["field"].removeprefix("body."), e["type"], e["message"])
            for e in expected["errors"]
        )
        assert sorted((e["field"], e["type"], e["message"]) for e in result["errors"]) == renamed
    after = await table_counts(session)
    assert after["visit"] == before["visit"] + 1
    # Only the good visit (and the batch, its device and the visit's change) was stored.
    kept = ("visit", "sync_change", "sync_batch", "device")
    assert {k: v for k, v in after.items() if k not in kept} == {
        k: v for k, v in before.items() if k not in kept
    }
    assert after["sync_change"] == before["sync_change"] + 1


async def test_a_revision_above_the_maximum_names_the_records_revision(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    too_big = record("visit", uuid.uuid4(), visit_body(world.households["a1"].id, 1_000_001))
    answer = await sent_ok(client, batch([too_big]), headers)
    [result] = answer["results"]
    assert result["status"] == "rejected"
    assert [e["field"] for e in result["errors"]] == ["records.0.revision"]


@pytest.mark.parametrize("kind", [{}, [], 7, None, True])
async def test_a_type_that_is_not_a_string_is_a_rejected_record(
    client: httpx.AsyncClient, session: AsyncSession, world: World, kind: Any
) -> None:
    """The fuzzer's coverage phase sent `"type": {}`: a 500 (unhashable) before the fix."""
    headers = await phone_headers(session, world, "officer_a1")
    good = record("visit", uuid.uuid4(), visit_body(world.households["a1"].id))
    odd = {**record("visit", uuid.uuid4(), visit_body(world.households["a1"].id)), "type": kind}
    answer = await sent_ok(client, batch([odd, good]), headers)
    assert [r["status"] for r in answer["results"]] == ["rejected", "created"]
    assert [e["field"] for e in answer["results"][0]["errors"]] == ["records.0.type"]


# --- idempotency of the batch ------------------------------------------------------------------


async def test_the_same_batch_again_is_the_stored_answer_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    a1 = world.households["a1"].id
    body = batch(
        [
            record("visit", uuid.uuid4(), visit_body(a1)),
            record("measure", uuid.uuid4(), measure_body(a1)),
            record("visit", uuid.uuid4(), visit_body(a1, mode="walk")),
        ]
    )
    first = await send(client, body, headers)
    assert first.status_code == 200, first.text
    assert "Idempotent-Replay" not in first.headers
    assert [r["status"] for r in first.json()["results"]] == ["created", "created", "rejected"]
    after_first = await table_counts(session)

    again = await send(client, body, headers)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json() == first.json()
    # The same content with its keys in another order is the same batch.
    shuffled = {k: body[k] for k in reversed(list(body))}
    shuffled["records"] = [{k: r[k] for k in reversed(list(r))} for r in body["records"]]
    third = await send(client, shuffled, headers)
    assert third.headers["Idempotent-Replay"] == "true"
    assert third.json() == first.json()
    assert await table_counts(session) == after_first

    # A phone that lost the answer may also fetch it.
    fetched = await client.get(f"{BATCHES}/{body['batch_id']}", headers=headers)
    assert fetched.status_code == 200
    assert fetched.json() == first.json()


async def test_a_batch_id_reused_for_other_content_is_409_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    a1 = world.households["a1"].id
    visit_id = uuid.uuid4()
    body = batch([record("visit", visit_id, visit_body(a1, findings="原样"))])
    first = await sent_ok(client, body, headers)
    after_first = await table_counts(session)

    other_id = uuid.uuid4()
    reused = {
        **body,
        "records": [
            record("visit", visit_id, visit_body(a1, 2, findings="改了")),
            record("visit", other_id, visit_body(a1)),
        ],
    }
    problem(await send(client, reused, headers), 409, "batch_id_reused")
    # Another user with the very same body does not get this user's answer either.
    secretary = await phone_headers(session, world, "secretary_a1")
    problem(await send(client, body, secretary), 409, "batch_id_reused")

    assert await table_counts(session) == after_first
    visit = await stored(session, "visit", visit_id)
    assert (visit.revision, visit.findings) == (1, "原样")
    row = await session.get(SyncBatch, uuid.UUID(body["batch_id"]), populate_existing=True)
    assert row is not None and row.response == first and row.record_count == 1
    fetched = await client.get(f"{BATCHES}/{body['batch_id']}", headers=headers)
    assert fetched.json() == first


async def test_a_batch_is_only_its_senders_to_fetch(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    body = batch([record("visit", uuid.uuid4(), visit_body(world.households["a1"].id))])
    await sent_ok(client, body, headers)
    for who in ("officer_a2", "secretary_a1", "admin_a"):
        other = await client.get(f"{BATCHES}/{body['batch_id']}", headers=world.headers(who))
        problem(other, 404, "batch_not_found")
    unknown = await client.get(f"{BATCHES}/{uuid.uuid4()}", headers=headers)
    not_yours = problem(unknown, 404, "batch_not_found")
    assert set(not_yours) >= {"type", "title", "status", "code", "detail"}
    assert (await client.get(f"{BATCHES}/{body['batch_id']}")).status_code == 401


# --- atomicity: a failure half-way leaves nothing -----------------------------------------------


async def test_an_unexpected_failure_mid_batch_stores_nothing_and_the_retry_applies_once(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device = f"phone-{uuid.uuid4().hex[:8]}"
    headers = await phone_headers(session, world, "officer_a1", device)
    household = world.households["a1"]
    a1 = household.id
    faulty_id = uuid.uuid4()
    items = [
        household_edit(a1, household.version, {"group_name": "三组"}),
        record("visit", uuid.uuid4(), visit_body(a1, photos=[{"sha256": SHA_A, "tag": "sign_in"}])),
        record("measure", uuid.uuid4(), measure_body(a1)),
        record("income_snapshot", faulty_id, snapshot_body(a1)),
        record("visit", uuid.uuid4(), visit_body(a1)),
    ]
    body = batch(items, device_id=device)
    version_before, group_before = household.version, household.group_name
    before = await table_counts(session)

    original = records_service.apply_record
    calls: list[uuid.UUID] = []

    async def apply_then_fail(session: AsyncSession, **kwargs: Any) -> Any:
        applied = await original(session, **kwargs)  # written, then the server fails
        calls.append(kwargs["record_id"])
        if kwargs["record_id"] == faulty_id:
            raise RuntimeError("disk full")
        return applied

    monkeypatch.setattr(records_service, "apply_record", apply_then_fail)
    failed = await send(client, body, headers)
    failure = problem(failed, 500, "internal_error")
    assert failure["retryable"] is True
    assert "disk full" not in failed.text
    assert faulty_id in calls  # the fault did happen after earlier records were written

    assert await table_counts(session) == before
    assert await session.get(SyncBatch, uuid.UUID(body["batch_id"])) is None
    assert await session.get(Device, device) is None
    group, version = (
        await session.execute(
            select(col(Household.group_name), col(Household.version)).where(col(Household.id) == a1)
        )
    ).one()
    assert (group, version) == (group_before, version_before)
    assert (await client.get(f"{BATCHES}/{body['batch_id']}", headers=headers)).status_code == 404

    monkeypatch.undo()
    retried = await send(client, body, headers)
    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replay" not in retried.headers
    answer = retried.json()
    assert [r["status"] for r in answer["results"]] == ["updated"] + ["created"] * 4
    after = await table_counts(session)
    for table in ("visit", "measure", "income_snapshot", "measure_revision", "sync_batch"):
        expected = {"visit": 2, "measure": 1, "income_snapshot": 1}.get(table, 1)
        assert after[table] == before[table] + expected, table
    assert after["photo_ref"] == before["photo_ref"] + 1
    assert after["household_change"] == before["household_change"] + 1
    group, version = (
        await session.execute(
            select(col(Household.group_name), col(Household.version)).where(col(Household.id) == a1)
        )
    ).one()
    assert (group, version) == ("三组", version_before + 1)
    replay = await send(client, body, headers)
    assert replay.headers["Idempotent-Replay"] == "true" and replay.json() == answer
    assert await table_counts(session) == after


# --- limits ----------------------------------------------------------------------------------


async def test_more_than_500_records_is_413_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    a1 = world.households["a1"].id
    items = [record("visit", uuid.uuid4(), visit_body(a1)) for _ in range(501)]
    body = batch(items)
    before = await table_counts(session)
    too_large = problem(await send(client, body, headers), 413, "batch_too_large")
    assert too_large["limit_records"] == 500
    assert "501" in too_large["detail"]
    assert await table_counts(session) == before
    problem(
        await client.get(f"{BATCHES}/{body['batch_id']}", headers=headers), 404, "batch_not_found"
    )


async def test_exactly_500_records_is_accepted(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """Cheap records (of an unknown type) at the limit: accepted, each with its result."""
    headers = await phone_headers(session, world, "officer_a1")
    items = [{"type": "note", "id": str(uuid.uuid4())} for _ in range(500)]
    answer = await sent_ok(client, batch(items), headers)
    assert answer["counts"]["rejected"] == 500
    assert answer["results"][499]["errors"][0]["field"] == "records.499.type"
    row = await session.get(SyncBatch, uuid.UUID(answer["batch_id"]))
    assert row is not None and (row.record_count, row.rejected) == (500, 500)


# --- photos the server still needs ----------------------------------------------------------


async def test_missing_photos_lists_what_the_records_reference_until_it_is_held(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    a1 = world.households["a1"].id
    visit_id, measure_id = uuid.uuid4(), uuid.uuid4()
    visit = visit_body(
        a1,
        photos=[
            {"sha256": SHA_A.upper(), "tag": "sign_in"},
            {"sha256": SHA_B, "tag": "before", "caption": "改造前"},
        ],
    )
    measure = measure_body(
        a1,
        progress_reports=[
            {
                "reported_at": ago(days=2),
                "progress_pct": 40,
                "photos": [{"sha256": SHA_A, "tag": "evidence"}],
            },
            {
                "reported_at": ago(days=1),
                "progress_pct": 60,
                "photos": [{"sha256": SHA_C, "tag": "after"}],
            },
        ],
    )
    answer = await sent_ok(
        client,
        batch([record("visit", visit_id, visit), record("measure", measure_id, measure)]),
        headers,
    )
    assert answer["missing_photos"] == sorted([SHA_A, SHA_B, SHA_C])
    refs = {
        (r.sha256, r.record_type, r.record_id, r.tag)
        for r in await session.scalars(select(PhotoRef))
    }
    assert refs == {
        (SHA_A, "visit", visit_id, "sign_in"),
        (SHA_B, "visit", visit_id, "before"),
        (SHA_A, "measure", measure_id, "evidence"),
        (SHA_C, "measure", measure_id, "after"),
    }
    officer = world.users["officer_a1"].id
    assert {(r.author_id, r.device_id) for r in await session.scalars(select(PhotoRef))} == {
        (officer, DEVICE)
    }

    # The bytes of A arrive (the upload endpoint is another story): the next batch drops it.
    session.add(Photo(sha256=SHA_A, size_bytes=123_456, content_type="image/jpeg"))
    await session.flush()
    answer = await sent_ok(client, batch([]), headers)
    assert answer["missing_photos"] == [SHA_B, SHA_C]
    # Another user's batch does not list this officer's photos.
    secretary = await phone_headers(session, world, "secretary_a1", "phone-secretary")
    assert (await sent_ok(client, batch([], device_id="phone-secretary"), secretary))[
        "missing_photos"
    ] == []
    # A later revision without photo B no longer needs it.
    revised = {**visit, "revision": 2, "photos": [{"sha256": SHA_A, "tag": "sign_in"}]}
    answer = await sent_ok(client, batch([record("visit", visit_id, revised)]), headers)
    assert answer["results"][0]["status"] == "updated"
    assert answer["missing_photos"] == [SHA_C]
    assert await count(session, PhotoRef, col(PhotoRef.sha256) == SHA_B) == 0


# --- the device a batch comes from --------------------------------------------------------------


async def test_a_batch_from_another_device_than_the_login_is_403(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1", "phone-x")
    body = batch(
        [record("visit", uuid.uuid4(), visit_body(world.households["a1"].id))], device_id="phone-y"
    )
    before = await table_counts(session)
    mismatch = problem(await send(client, body, headers), 403, "device_mismatch")
    assert "phone-x" in mismatch["detail"]
    assert await table_counts(session) == before
    assert await session.get(Device, "phone-y") is None
    assert await session.get(SyncBatch, uuid.UUID(body["batch_id"])) is None


async def test_a_batch_registers_the_device_and_keeps_its_last_sync_and_version(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    device_id = f"phone-{uuid.uuid4().hex[:8]}"
    headers = await phone_headers(session, world, "officer_a1", device_id)
    a1 = world.households["a1"].id
    answer = await sent_ok(
        client,
        batch([record("visit", uuid.uuid4(), visit_body(a1))], device_id=device_id),
        headers,
    )
    received_at = parse(answer["received_at"])
    device = await session.get(Device, device_id, populate_existing=True)
    assert device is not None
    assert device.user_id == world.users["officer_a1"].id
    assert device.app_version == "2.3.0"
    assert device.last_sync_at == received_at
    assert device.revoked_at is None
    row = await session.get(SyncBatch, uuid.UUID(answer["batch_id"]))
    assert row is not None and (row.device_id, row.app_version) == (device_id, "2.3.0")

    # Days later, after an app update.
    long_ago = utcnow() - timedelta(days=3)
    device.last_sync_at = device.last_seen_at = long_ago
    await session.flush()
    answer = await sent_ok(client, batch([], device_id=device_id, app_version="2.4.1"), headers)
    device = await session.get(Device, device_id, populate_existing=True)
    assert device is not None
    assert device.app_version == "2.4.1"
    assert device.last_sync_at == device.last_seen_at == parse(answer["received_at"])
    # A batch that does not name its version leaves the known one alone.
    await sent_ok(client, batch([], device_id=device_id, app_version=None), headers)
    device = await session.get(Device, device_id, populate_existing=True)
    assert device is not None and device.app_version == "2.4.1"


async def test_a_login_without_a_device_stamps_the_batchs_device(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    visit_id = uuid.uuid4()
    body = batch(
        [record("visit", visit_id, visit_body(world.households["a1"].id))], device_id="tablet-9"
    )
    await sent_ok(client, body, world.headers("officer_a1"))
    visit = await stored(session, "visit", visit_id)
    assert visit.device_id == "tablet-9"
    device = await session.get(Device, "tablet-9")
    assert device is not None and device.user_id == world.users["officer_a1"].id


async def test_a_revoked_device_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1", "lost-phone")
    await sent_ok(client, batch([], device_id="lost-phone"), headers)
    device = await session.get(Device, "lost-phone", populate_existing=True)
    assert device is not None
    device.revoked_at = utcnow()
    await session.flush()
    before = await table_counts(session)
    visit_id = uuid.uuid4()
    items = [record("visit", visit_id, visit_body(world.households["a1"].id))]
    for caller in (headers, world.headers("officer_a1")):
        refused = await send(client, batch(items, device_id="lost-phone"), caller)
        problem(refused, 403, "device_revoked")
    assert await table_counts(session) == before
    assert await session.get(Visit, visit_id) is None


async def test_a_batch_needs_a_token_that_may_write(
    client: httpx.AsyncClient, world: World
) -> None:
    body = batch([record("visit", uuid.uuid4(), visit_body(world.households["a1"].id))])
    problem(await client.post(BATCHES, json=body), 401, "not_authenticated")


async def test_the_batch_envelope_is_validated(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = await phone_headers(session, world, "officer_a1")
    before = await table_counts(session)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"batch_id": "b-1"}, "body.batch_id"),
        ({"device_id": "my phone"}, "body.device_id"),
        ({"records": {"type": "visit"}}, "body.records"),
        ({"records": ["visit"]}, "body.records.0"),
        ({"extra": 1}, "body.extra"),
    ]
    for changes, field in cases:
        problem(
            await send(client, {**batch([]), **changes}, headers), 422, "validation_failed", field
        )
    assert await table_counts(session) == before
    assert await count(session, Change) == before["sync_change"]


async def test_a_batch_of_new_records_costs_the_same_statements_however_many(
    client: httpx.AsyncClient, session: AsyncSession, world: World, engine: AsyncEngine
) -> None:
    """Statements per batch do not grow with its records: multi-row inserts, one flush."""
    headers = await phone_headers(session, world, "officer_a1")
    household = world.households["a1"].id
    statements: list[list[str]] = []
    for size in (1, 4, 40):  # the first registers the device
        body = batch(
            [
                record(kind, uuid.uuid4(), make(household))
                for _ in range(size)
                for kind, make in (("visit", visit_body), ("measure", measure_body))
            ]
        )
        seen: list[str] = []

        def note(
            _conn: Any, _cursor: Any, statement: str, *_args: Any, seen: list[str] = seen
        ) -> None:
            # The statement's kind and table (savepoint names differ from batch to batch).
            seen.append(" ".join(re.sub(r"sa_savepoint_\d+", "", statement).split()[:3]))

        event.listen(engine.sync_engine, "before_cursor_execute", note)
        try:
            answer = await sent_ok(client, body, headers)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", note)
        assert answer["counts"]["created"] == 2 * size
        statements.append(seen)
    _, few, many = statements
    assert Counter(many) == Counter(few)


def test_the_documented_batch_example_is_valid_record_by_record() -> None:
    """The OpenAPI example of a batch: each of its records passes its own type's validation."""
    from app.sync.schemas import SyncBatchIn

    example = SyncBatchIn.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
    batch = SyncBatchIn.model_validate(example)
    for item in batch.records:
        if item.type in records_service.KINDS:
            kind = records_service.KINDS[item.type]
            kind.write.model_validate({**item.data, "revision": item.revision})
