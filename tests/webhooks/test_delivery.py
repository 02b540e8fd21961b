"""The worker: fan-out to the right webhooks, signed deliveries, retries, order, leases.

The worker runs on the test's session (savepoints) and calls a real HTTP receiver on loopback.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.clients.models import ApiClient
from app.core.base import utcnow
from app.core.config import Settings
from app.regions import codes
from app.webhooks.delivery import Worker, claim_deliveries, retry_delay
from app.webhooks.models import Webhook, WebhookDelivery, WebhookEvent
from app.webhooks.outbox import dispatch_events, prune
from tests.builders import COUNTY_A, COUNTY_B, VILLAGE_A1, VILLAGE_A2, World
from tests.clients.builders import make_client
from tests.records.bodies import measure_body, put, visit_body
from tests.webhooks.helpers import (
    API,
    Receiver,
    SessionTransactions,
    event_count,
    events,
    fast_settings,
    make_webhook,
    session_transactions,
    wait_until,
)


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[None]:
    """The worker's endless loop, as a task; stopped between two of its transactions."""
    transactions = worker.transactions
    assert isinstance(transactions, SessionTransactions)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        async with transactions.lock:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def deliveries(session: AsyncSession, webhook: Webhook | uuid.UUID) -> list[WebhookDelivery]:
    webhook_id = webhook.id if isinstance(webhook, Webhook) else webhook
    await session.flush()
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(col(WebhookDelivery.webhook_id) == webhook_id)
        .order_by(col(WebhookDelivery.event_id))
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def visit(client: httpx.AsyncClient, world: World, key: str, who: str = "officer_a1") -> None:
    response = await put(client, world, "visit", visit_body(world.households[key].id), who=who)
    assert response.status_code == 201, response.text


# --- acceptance 2 ----------------------------------------------------------------------------


async def test_a_receiver_failing_its_first_three_deliveries_gets_every_event_in_order(
    client: httpx.AsyncClient, world: World, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 7, acceptance 2: every event arrives once the endpoint recovers, in order per
    household, with valid signatures."""
    from app.core.config import get_settings

    monkeypatch.setattr(get_settings(), "webhook_allow_private_addresses", True)
    admin = world.headers("admin_a")
    a1, a2 = world.households["a1"], world.households["a2"]
    with Receiver(answer=lambda n, event: 500 if n < 3 else 200) as receiver:
        created = await client.post(
            f"{API}/webhooks",
            json={
                "url": receiver.url,
                "event_types": [
                    "visit.created",
                    "household.status_changed",
                    "measure.completed",
                    "sync.batch_received",
                ],
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        hook = created.json()

        # What happens in the county: visits, a status change, a measure done, a batch; and a
        # visit in county B, which county A's webhook must never see.
        for _ in range(3):
            await visit(client, world, "a1")
            await visit(client, world, "a2", who="officer_a2")
        patched = await client.patch(
            f"{API}/households/{a1.id}",
            json={"status": "lifted", "override_reason": "验收通过"},
            headers=admin | {"If-Match": '"v1"'},
        )
        assert patched.status_code == 200, patched.text
        done = measure_body(a1.id, status="done", progress_pct=100)
        assert (await put(client, world, "measure", done)).status_code == 201
        batch = {
            "batch_id": str(uuid.uuid4()),
            "device_id": "android-officer-a1",
            "records": [
                {
                    "type": "visit",
                    "id": str(uuid.uuid4()),
                    "revision": 1,
                    "data": {k: v for k, v in visit_body(a1.id).items() if k != "revision"},
                }
                for _ in range(4)
            ],
        }
        sent = await client.post(
            f"{API}/sync/batches", json=batch, headers=world.headers("officer_a1")
        )
        assert sent.status_code == 200, sent.text
        await visit(client, world, "b1", who="admin_b")
        await visit(client, world, "a2", who="officer_a2")

        outbox = await events(session)
        expected = {e.id for e in outbox if codes.is_within(e.region_code, COUNTY_A)}
        # 6 visits, a status change, a measure done, 4 visits in a batch and the batch, 1 visit
        assert len(expected) == 6 + 1 + 1 + 4 + 1 + 1
        worker = Worker(session_transactions(session), fast_settings())

        async with running(worker):
            await wait_until(
                lambda: (
                    {r.event["id"] for r in receiver.delivered()} >= expected
                    and not worker.in_flight
                )  # the outcomes recorded too
            )
        received = receiver.snapshot()

    # The first three attempts failed, then everything arrived: exactly once each (nothing
    # failed after the receiver recovered), none of county B.
    assert [r.answered for r in received[:3]] == [500, 500, 500]
    assert all(r.answered == 200 for r in received[3:])
    assert Counter(r.event["id"] for r in receiver.delivered()) == dict.fromkeys(expected, 1)
    assert not {r.event["village_code"] for r in received} - {VILLAGE_A1, VILLAGE_A2}

    # In order per household: every request (failed ones included) of a household carries an
    # event id no lower than the one before it.
    by_household: dict[str, list[int]] = defaultdict(list)
    for r in received:
        if r.event["household_id"] is not None:
            by_household[r.event["household_id"]].append(r.event["id"])
    assert set(by_household) == {str(a1.id), str(a2.id)}
    for ids in by_household.values():
        assert ids == sorted(ids)
    assert len(by_household[str(a1.id)]) >= 3 + 1 + 1 + 4

    # Signed with the secret shown at creation; headers name the event and the delivery.
    log = (
        await client.get(f"{API}/webhooks/{hook['id']}/deliveries?limit=500", headers=admin)
    ).json()["items"]
    delivery_of = {d["event"]["id"]: d for d in log}
    for r in received:
        assert r.signed_by(hook["secret"])
        assert not r.signed_by("whsec_someone-else")
        assert r.headers["content-type"] == "application/json"
        assert r.headers["fieldsync-event"] == r.event["type"]
        assert r.headers["fieldsync-event-id"] == r.headers["webhook-id"] == str(r.event["id"])
        assert r.headers["fieldsync-delivery"] == delivery_of[r.event["id"]]["id"]
        assert r.event == delivery_of[r.event["id"]]["event"]
    # The log agrees: all delivered, three attempts more than events.
    assert {d["status"] for d in log} == {"delivered"}
    assert sum(d["attempts"] for d in log) == len(expected) + 3
    retried = [d for d in log if d["attempts"] > 1]
    assert all(d["last_status_code"] == 200 and d["delivered_at"] for d in retried)


# --- order -----------------------------------------------------------------------------------


async def test_a_failing_event_holds_back_its_households_later_events_only(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    with Receiver() as receiver:
        await make_webhook(
            session,
            owner=world.users["admin_a"],
            regions=(COUNTY_A,),
            url=receiver.url,
            event_types=["visit.created"],
        )
        await visit(client, world, "a1")
        await visit(client, world, "a1")
        await visit(client, world, "a2", who="officer_a2")
        first, second, other = (e.id for e in await events(session))
        failures = Counter[int]()

        def answer(n: int, event: dict[str, Any]) -> int:
            if event["id"] == first and failures[first] < 3:
                failures[first] += 1
                return 503
            return 200

        receiver.answer = answer
        worker = Worker(session_transactions(session), fast_settings())
        async with running(worker):
            await wait_until(lambda: len(receiver.delivered()) == 3 and not worker.in_flight)
        arrivals = [(r.event["id"], r.answered) for r in receiver.snapshot()]

    assert arrivals.count((first, 503)) == 3
    first_ok = arrivals.index((first, 200))
    assert arrivals.index((second, 200)) > first_ok  # waited for the first
    assert arrivals.index((other, 200)) < first_ok  # another household did not wait


async def test_a_delivery_given_up_no_longer_holds_back_the_next(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    settings = fast_settings(webhook_retry_hours=0.4 / 3600)  # retried for 0.4 s
    with Receiver() as receiver:
        hook = await make_webhook(
            session,
            owner=world.users["admin_a"],
            regions=(COUNTY_A,),
            url=receiver.url,
            event_types=["visit.created"],
        )
        await visit(client, world, "a1")
        first = (await events(session))[0].id
        receiver.answer = lambda n, event: 500 if event["id"] == first else 200
        await dispatch_events(session_transactions(session), settings)
        await visit(client, world, "a1")

        worker = Worker(session_transactions(session), settings)
        async with running(worker):
            await wait_until(lambda: len(receiver.delivered()) == 1 and not worker.in_flight)

    dead, delivered = await deliveries(session, hook)
    # How many attempts fit in its 0.4 s depends on the machine's load: at least one did.
    assert dead.status == "dead" and dead.attempts >= 1 and dead.last_status_code == 500
    assert dead.last_error == "HTTP 500"
    assert delivered.status == "delivered"


# --- redelivery, leases, failures -------------------------------------------------------------


async def test_redelivery_sends_the_same_event_again(
    client: httpx.AsyncClient, world: World, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import get_settings

    monkeypatch.setattr(get_settings(), "webhook_allow_private_addresses", True)
    with Receiver() as receiver:
        created = await client.post(
            f"{API}/webhooks",
            json={"url": receiver.url, "event_types": ["visit.created"]},
            headers=world.headers("admin_a"),
        )
        hook = created.json()
        await visit(client, world, "a1")
        worker = Worker(session_transactions(session), fast_settings())
        assert await worker.run_once() == 1
        [delivery] = await deliveries(session, uuid.UUID(hook["id"]))
        assert delivery.status == "delivered" and delivery.attempts == 1

        url = f"{API}/webhooks/{hook['id']}/deliveries/{delivery.id}/redeliver"
        queued = await client.post(url, headers=world.headers("admin_a"))
        assert queued.status_code == 202
        assert await worker.run_once() == 1
        first, again = receiver.snapshot()

    assert again.body == first.body
    assert (first.headers["fieldsync-attempt"], again.headers["fieldsync-attempt"]) == ("1", "2")
    assert again.signed_by(hook["secret"])
    # The message id of the Standard Webhooks headers stays the same: receivers deduplicate on it.
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == str(first.event["id"])
    [delivery] = await deliveries(session, uuid.UUID(hook["id"]))
    assert delivery.status == "delivered" and delivery.attempts == 2


async def test_a_leased_delivery_is_not_claimed_twice_until_its_lease_runs_out(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    transactions, settings = session_transactions(session), fast_settings()
    await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
    await visit(client, world, "a1")
    await dispatch_events(transactions, settings)

    [claimed] = await claim_deliveries(transactions, settings, limit=10)
    assert await claim_deliveries(transactions, settings, limit=10) == []

    # The worker that held it died: once the lease has run out, another one sends it again.
    await session.execute(
        update(WebhookDelivery).values(claimed_until=utcnow() - timedelta(seconds=1))
    )
    [again] = await claim_deliveries(transactions, settings, limit=10)
    assert again.delivery_id == claimed.delivery_id and again.body == claimed.body


async def test_private_destinations_are_refused_at_delivery(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    with Receiver() as receiver:
        hook = await make_webhook(
            session, owner=world.users["admin_a"], regions=(COUNTY_A,), url=receiver.url
        )
        await visit(client, world, "a1")
        worker = Worker(
            session_transactions(session), fast_settings(webhook_allow_private_addresses=False)
        )
        assert await worker.run_once() == 1

    assert receiver.snapshot() == []
    [delivery] = await deliveries(session, hook)
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert delivery.last_error is not None and "not public" in delivery.last_error


@pytest.mark.parametrize(
    ("answer", "delay", "error"),
    [(302, 0, "HTTP 302"), (404, 0, "HTTP 404"), (200, 1.0, "no answer within 0.3 s")],
)
async def test_redirects_errors_and_timeouts_are_failures(
    client: httpx.AsyncClient,
    world: World,
    session: AsyncSession,
    answer: int,
    delay: float,
    error: str,
) -> None:
    settings = fast_settings(
        webhook_timeout_seconds=0.3, webhook_retry_base_seconds=60, webhook_retry_max_seconds=600
    )
    with Receiver(answer=lambda n, event: answer, delay=delay) as receiver:
        hook = await make_webhook(
            session, owner=world.users["admin_a"], regions=(COUNTY_A,), url=receiver.url
        )
        await visit(client, world, "a1")
        before = utcnow()
        assert await Worker(session_transactions(session), settings).run_once() == 1

    [delivery] = await deliveries(session, hook)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.last_error == error
    assert delivery.claimed_until is None
    # Retried later: 60 s doubled 0 times, jittered down by at most half.
    assert before + timedelta(seconds=29) < delivery.next_attempt_at
    assert len([r for r in receiver.snapshot() if r.headers.get("fieldsync-event")]) <= 1


async def test_a_disabled_webhook_gets_nothing_more(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    with Receiver() as receiver:
        hook = await make_webhook(
            session, owner=world.users["admin_a"], regions=(COUNTY_A,), url=receiver.url
        )
        await visit(client, world, "a1")
        transactions, settings = session_transactions(session), fast_settings()
        await dispatch_events(transactions, settings)
        hook.disabled_at = utcnow()
        await visit(client, world, "a1")

        assert await Worker(transactions, settings).run_once() == 0

    assert receiver.snapshot() == []
    assert len(await deliveries(session, hook)) == 1  # the one fanned out before


# --- fan-out ---------------------------------------------------------------------------------


async def test_events_go_to_the_webhooks_whose_owners_may_read_them(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    admin_a, admin_b = world.users["admin_a"], world.users["admin_b"]
    county_a = await make_webhook(session, owner=admin_a, regions=(COUNTY_A,))
    village_a2 = await make_webhook(
        session, owner=admin_a, regions=(COUNTY_A,), region_code=VILLAGE_A2
    )
    county_b = await make_webhook(session, owner=admin_b, regions=(COUNTY_B,))
    statuses_only = await make_webhook(
        session, owner=admin_a, regions=(COUNTY_A,), event_types=["household.status_changed"]
    )
    registered = await make_client(
        session, admin=admin_a, region=VILLAGE_A1, scopes=("records:read", "households:read")
    )
    client_user = registered.client.user_id
    from app.users.models import User

    client_owner = await session.get(User, client_user)
    assert client_owner is not None
    of_client = await make_webhook(
        session,
        owner=client_owner,
        regions=(VILLAGE_A1,),
        event_types=["visit.created", "household.status_changed"],
        scopes=("records:read", "households:read"),
    )

    await visit(client, world, "a1")
    await visit(client, world, "a2", who="officer_a2")
    await visit(client, world, "b1", who="admin_b")
    patched = await client.patch(
        f"{API}/households/{world.households['a1'].id}",
        json={"status": "lifted", "override_reason": "验收通过"},
        headers=world.headers("admin_a") | {"If-Match": '"v1"'},
    )
    assert patched.status_code == 200
    transactions, settings = session_transactions(session), fast_settings()
    await dispatch_events(transactions, settings)
    # The client loses records:read: its visit events stop (status changes would go on).
    client_row = await session.get(ApiClient, registered.client.id)
    assert client_row is not None
    client_row.scopes = ["households:read"]
    await visit(client, world, "a1")
    await dispatch_events(transactions, settings)

    async def got(hook: Webhook) -> list[tuple[str, str]]:
        rows = await session.execute(
            select(WebhookEvent.type, WebhookEvent.region_code)
            .join(WebhookDelivery, col(WebhookDelivery.event_id) == col(WebhookEvent.id))
            .where(col(WebhookDelivery.webhook_id) == hook.id)
            .order_by(col(WebhookEvent.id))
        )
        return [(t, r) for t, r in rows]

    status = ("household.status_changed", VILLAGE_A1)
    visit_a1, visit_a2 = ("visit.created", VILLAGE_A1), ("visit.created", VILLAGE_A2)
    assert await got(county_a) == [visit_a1, visit_a2, status, visit_a1]
    assert await got(village_a2) == [visit_a2]
    assert await got(county_b) == [("visit.created", "371523101201")]
    assert await got(statuses_only) == [status]
    assert await got(of_client) == [visit_a1, status]


async def test_no_event_is_written_while_no_webhook_is_active_and_unwanted_ones_are_dropped(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    transactions, settings = session_transactions(session), fast_settings()
    await visit(client, world, "a1")
    assert await event_count(session) == 0  # no webhook: no event written, nothing read

    await make_webhook(
        session,
        owner=world.users["admin_a"],
        regions=(COUNTY_A,),
        event_types=["household.status_changed"],
    )
    await visit(client, world, "a1")
    assert await event_count(session) == 1
    assert await dispatch_events(transactions, settings) == 1
    assert await event_count(session) == 0  # nobody wanted it: gone

    hook = await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
    await visit(client, world, "a1")
    await dispatch_events(transactions, settings)

    [delivery] = await deliveries(session, hook)
    [kept] = await events(session)
    assert delivery.event_id == kept.id and kept.dispatched_at is not None


async def test_a_disabled_clients_webhooks_get_nothing(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    registered = await make_client(session, admin=world.users["admin_a"], region=VILLAGE_A1)
    from app.users.models import User

    owner = await session.get(User, registered.client.user_id)
    assert owner is not None
    hook = await make_webhook(
        session,
        owner=owner,
        regions=(VILLAGE_A1,),
        event_types=["visit.created"],
        scopes=("records:read",),
    )
    transactions, settings = session_transactions(session), fast_settings()
    await visit(client, world, "a1")
    await dispatch_events(transactions, settings)
    [fanned_out] = await deliveries(session, hook)

    owner.is_active = False  # what disabling the client does to its account
    await visit(client, world, "a1")
    await dispatch_events(transactions, settings)

    assert await deliveries(session, hook) == [fanned_out]  # no new one
    assert await claim_deliveries(transactions, settings, limit=10) == []  # nor sent


# --- backoff and pruning ----------------------------------------------------------------------


def test_the_backoff_doubles_is_capped_and_jittered() -> None:
    settings: Settings = fast_settings(
        webhook_retry_base_seconds=10, webhook_retry_max_seconds=3600
    )
    rng = random.Random(7)
    for attempts, full in [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (40, 3600)]:
        for _ in range(20):
            delay = retry_delay(attempts, settings, rng=rng)
            assert full / 2 <= delay <= full


async def test_pruning_keeps_what_is_still_to_be_sent(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    transactions, settings = session_transactions(session), fast_settings()
    hook = await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
    await visit(client, world, "a1")
    await visit(client, world, "a2", who="officer_a2")
    await dispatch_events(transactions, settings)
    old, open_ = await deliveries(session, hook)
    old.status = "delivered"
    open_.status = "failed"
    month_ago = utcnow() - timedelta(days=31)
    for delivery in (old, open_):
        delivery.created_at = month_ago
    await session.execute(update(WebhookEvent).values(occurred_at=month_ago))

    assert await prune(transactions, older_than=utcnow() - timedelta(days=30)) == (1, 1)
    [kept] = await deliveries(session, hook)
    assert kept.id == open_.id
    assert [e.id for e in await events(session)] == [open_.event_id]
