"""POST /webhooks/{id}/test: one webhook.test event, to that webhook only, sent by the worker."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from app.core.config import get_settings
from app.webhooks.delivery import Worker
from app.webhooks.outbox import dispatch_events
from tests.assertions import problem
from tests.builders import COUNTY_A, VILLAGE_A1, World
from tests.webhooks.helpers import (
    API,
    Receiver,
    create_via_api,
    fast_settings,
    make_webhook,
    session_transactions,
)


async def test_a_test_event_goes_to_that_webhook_only_and_is_delivered_signed(
    client: httpx.AsyncClient, world: World, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "webhook_allow_private_addresses", True)
    headers = world.headers("admin_a")
    with Receiver() as receiver, Receiver() as bystander:
        created = await client.post(
            f"{API}/webhooks",
            json={"url": receiver.url, "event_types": ["visit.created"], "region_code": VILLAGE_A1},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        # Another webhook of the county, subscribed to everything: the test is not its.
        other = await make_webhook(
            session, owner=world.users["admin_a"], regions=(COUNTY_A,), url=bystander.url
        )

        queued = await client.post(f"{API}/webhooks/{hook['id']}/test", headers=headers)

        assert queued.status_code == 202, queued.text
        delivery = queued.json()
        assert delivery["webhook_id"] == hook["id"]
        assert (delivery["status"], delivery["attempts"]) == ("pending", 0)
        assert delivery["next_attempt_at"] is not None and delivery["delivered_at"] is None
        event = delivery["event"]
        assert event["type"] == "webhook.test"
        assert event["household_id"] is None
        assert event["village_code"] == VILLAGE_A1  # the webhook's region
        assert event["data"]["webhook_id"] == hook["id"]
        assert event["data"]["requested_by"] == str(world.users["admin_a"].id)
        log_url = f"{API}/webhooks/{hook['id']}/deliveries"
        [listed] = (await client.get(log_url, headers=headers)).json()["items"]
        assert listed == delivery

        worker = Worker(session_transactions(session), fast_settings())
        assert await worker.run_once() == 1
        [received] = receiver.snapshot()
        assert bystander.snapshot() == []

    assert received.headers["fieldsync-event"] == "webhook.test"
    assert received.headers["fieldsync-delivery"] == delivery["id"]
    assert received.headers["fieldsync-event-id"] == str(event["id"])
    # A receiver verifies it with the Standard Webhooks library, and refuses it altered.
    assert StandardWebhook(hook["secret"]).verify(received.body, received.headers) == event
    assert received.headers["webhook-id"] == str(event["id"])
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(hook["secret"]).verify(
            received.body.replace(b"webhook.test", b"webhook.tost"), received.headers
        )
    assert received.event == event
    [done] = (await client.get(log_url, headers=headers)).json()["items"]
    assert (done["status"], done["attempts"], done["last_status_code"]) == ("delivered", 1, 200)
    other_log = await client.get(f"{API}/webhooks/{other.id}/deliveries", headers=headers)
    assert other_log.json()["items"] == []
    # Nothing is left for the fan-out either.
    assert await dispatch_events(session_transactions(session), fast_settings()) == 0


async def test_who_may_send_a_test_event(client: httpx.AsyncClient, world: World) -> None:
    hook = (await create_via_api(client, world.headers("admin_a"))).json()
    url = f"{API}/webhooks/{hook['id']}/test"

    problem(await client.post(url, headers=world.headers("officer_a1")), 403, "forbidden")
    problem(await client.post(url, headers=world.headers("admin_b")), 404, "webhook_not_found")
    problem(
        await client.post(f"{API}/webhooks/{uuid.uuid4()}/test", headers=world.headers("admin_a")),
        404,
        "webhook_not_found",
    )
    problem(await client.post(url), 401, "not_authenticated")

    await client.post(f"{API}/webhooks/{hook['id']}/disable", headers=world.headers("admin_a"))
    problem(await client.post(url, headers=world.headers("admin_a")), 409, "webhook_disabled")
    log = await client.get(
        f"{API}/webhooks/{hook['id']}/deliveries", headers=world.headers("admin_a")
    )
    assert log.json()["items"] == []


async def test_nobody_subscribes_to_test_events(client: httpx.AsyncClient, world: World) -> None:
    response = await create_via_api(
        client, world.headers("admin_a"), event_types=["visit.created", "webhook.test"]
    )
    body = problem(response, 422, "validation_failed", "body.event_types.1")
    assert "POST /webhooks/{id}/test" in body["errors"][0]["message"]
    document = (await client.get("/openapi.json")).json()
    items = document["components"]["schemas"]["WebhookCreate"]["properties"]["event_types"]["items"]
    assert "webhook.test" not in items["enum"] and "visit.created" in items["enum"]
