"""/webhooks: who may subscribe to what, the URL rules, reading, disabling, the delivery log."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.webhooks.outbox import dispatch_events
from app.webhooks.service import MAX_ACTIVE_PER_OWNER
from tests.builders import COUNTY_A, COUNTY_B, VILLAGE_A1, VILLAGE_A2, World
from tests.clients.builders import bearer_for, make_client
from tests.records.bodies import put, visit_body
from tests.webhooks.helpers import (
    ALL_TYPES,
    API,
    create_via_api,
    fast_settings,
    session_transactions,
)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = dict(response.json())
    assert body["status"] == status and body["code"] == code, body
    return body


async def test_a_county_admin_subscribes_and_sees_the_secret_once(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await create_via_api(
        client,
        world.headers("admin_a"),
        event_types=["measure.completed", "visit.created", "visit.created"],
        description="  县防返贫监测平台 ",
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["visit.created", "measure.completed"]  # canonical order
    assert body["region_code"] == COUNTY_A  # the admin's own, by default
    assert body["description"] == "县防返贫监测平台"
    assert body["owner_id"] == str(world.users["admin_a"].id)
    assert body["disabled"] is False and body["disabled_at"] is None
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["location"] == f"{API}/webhooks/{body['id']}"

    again = await client.get(response.headers["location"], headers=world.headers("admin_a"))
    assert again.status_code == 200
    assert "secret" not in again.json()
    assert {k: v for k, v in body.items() if k != "secret"} == again.json()


@pytest.mark.parametrize("who", ["officer_a1", "secretary_a1"])
async def test_officers_and_secretaries_may_not_subscribe(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    _problem(await create_via_api(client, world.headers(who)), 403, "forbidden")
    _problem(await client.get(f"{API}/webhooks", headers=world.headers(who)), 403, "forbidden")


async def test_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await create_via_api(client, {})
    _problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_the_region_must_be_at_or_below_yours(
    client: httpx.AsyncClient, world: World
) -> None:
    for region in (COUNTY_B, "371522101299"):  # another county's; none such
        body = _problem(
            await create_via_api(client, world.headers("admin_a"), region_code=region),
            422,
            "validation_failed",
        )
        assert body["errors"][0]["field"] == "body.region_code"
    ok = await create_via_api(client, world.headers("admin_a"), region_code=VILLAGE_A2)
    assert ok.status_code == 201 and ok.json()["region_code"] == VILLAGE_A2


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "http://127.0.0.1:9000/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://user:secret@hooks.example.com/",
        "http://localhost/hook",
    ],
)
async def test_refused_urls_are_named(client: httpx.AsyncClient, world: World, url: str) -> None:
    body = _problem(
        await create_via_api(client, world.headers("admin_a"), url=url), 422, "validation_failed"
    )
    assert body["errors"][0]["field"] == "body.url"
    assert body["errors"][0]["type"] == "url_refused"


async def test_loopback_is_allowed_by_the_setting(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "webhook_allow_private_addresses", True)
    response = await create_via_api(
        client, world.headers("admin_a"), url="http://127.0.0.1:9000/hook"
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"event_types": []},
        {"event_types": ["visit.deleted"]},
        {"url": ""},
        {"unknown": 1},
        {"region_code": "37"},
        {"description": "x" * 201},
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, world: World, body: dict[str, Any]
) -> None:
    _problem(
        await create_via_api(client, world.headers("admin_a"), **body), 422, "validation_failed"
    )


async def test_an_api_client_subscribes_to_what_its_scopes_read(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    registered = await make_client(
        session,
        admin=world.users["admin_a"],
        region=VILLAGE_A1,
        scopes=("households:read", "records:read"),
    )
    headers = await bearer_for(client, registered)

    refused = await create_via_api(client, headers, event_types=["household.risk_flagged"])
    body = _problem(refused, 403, "insufficient_scope")
    assert "progress:read" in body["detail"]
    assert 'scope="progress:read"' in refused.headers["www-authenticate"]

    created = await create_via_api(
        client, headers, event_types=["visit.created", "household.status_changed"]
    )
    assert created.status_code == 201, created.text
    assert created.json()["region_code"] == VILLAGE_A1
    outside = await create_via_api(
        client, headers, event_types=["visit.created"], region_code=VILLAGE_A2
    )
    _problem(outside, 422, "validation_failed")

    # The client sees its own webhooks only; the county's admin sees the client's too.
    admins = await create_via_api(client, world.headers("admin_a"))
    mine = await client.get(f"{API}/webhooks", headers=headers)
    assert [w["id"] for w in mine.json()["items"]] == [created.json()["id"]]
    hidden = await client.get(f"{API}/webhooks/{admins.json()['id']}", headers=headers)
    _problem(hidden, 404, "webhook_not_found")
    county = await client.get(f"{API}/webhooks", headers=world.headers("admin_a"))
    assert {w["id"] for w in county.json()["items"]} == {
        created.json()["id"],
        admins.json()["id"],
    }
    other_county = await client.get(f"{API}/webhooks", headers=world.headers("admin_b"))
    assert other_county.json()["items"] == []


async def test_lists_page_oldest_first(client: httpx.AsyncClient, world: World) -> None:
    ids = [
        (await create_via_api(client, world.headers("admin_a"), description=f"#{i}")).json()["id"]
        for i in range(3)
    ]
    first = (await client.get(f"{API}/webhooks?limit=2", headers=world.headers("admin_a"))).json()
    assert [w["id"] for w in first["items"]] == ids[:2]
    rest = await client.get(
        f"{API}/webhooks", params={"cursor": first["next_cursor"]}, headers=world.headers("admin_a")
    )
    assert [w["id"] for w in rest.json()["items"]] == ids[2:]
    assert rest.json()["next_cursor"] is None


async def test_another_countys_webhook_looks_like_a_missing_one(
    client: httpx.AsyncClient, world: World
) -> None:
    created = (await create_via_api(client, world.headers("admin_a"))).json()
    for url in (f"{API}/webhooks/{created['id']}", f"{API}/webhooks/{uuid.uuid4()}"):
        _problem(await client.get(url, headers=world.headers("admin_b")), 404, "webhook_not_found")
        _problem(
            await client.post(f"{url}/disable", headers=world.headers("admin_b")),
            404,
            "webhook_not_found",
        )
        _problem(
            await client.get(f"{url}/deliveries", headers=world.headers("admin_b")),
            404,
            "webhook_not_found",
        )


async def test_disabling_is_for_good_and_idempotent(
    client: httpx.AsyncClient, world: World
) -> None:
    created = (await create_via_api(client, world.headers("admin_a"))).json()
    url = f"{API}/webhooks/{created['id']}/disable"

    first = await client.post(url, headers=world.headers("admin_a"))
    second = await client.post(url, headers=world.headers("admin_a"))

    assert first.status_code == second.status_code == 200
    assert first.json()["disabled"] is True
    assert first.json()["disabled_at"] == second.json()["disabled_at"]


async def test_active_webhooks_per_owner_are_limited(
    client: httpx.AsyncClient, world: World
) -> None:
    ids = []
    for _ in range(MAX_ACTIVE_PER_OWNER):
        response = await create_via_api(client, world.headers("admin_a"))
        assert response.status_code == 201
        ids.append(response.json()["id"])
    body = _problem(
        await create_via_api(client, world.headers("admin_a")), 409, "too_many_webhooks"
    )
    assert body["limit"] == MAX_ACTIVE_PER_OWNER

    await client.post(f"{API}/webhooks/{ids[0]}/disable", headers=world.headers("admin_a"))
    assert (await create_via_api(client, world.headers("admin_a"))).status_code == 201


async def test_the_delivery_log_and_redelivery(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    headers = world.headers("admin_a")
    hook = (await create_via_api(client, headers, event_types=["visit.created"])).json()
    household = world.households["a1"]
    visit_ids = [uuid.uuid4(), uuid.uuid4()]
    for visit_id in visit_ids:
        response = await put(client, world, "visit", visit_body(household.id), record_id=visit_id)
        assert response.status_code == 201
    await dispatch_events(session_transactions(session), fast_settings())
    log_url = f"{API}/webhooks/{hook['id']}/deliveries"

    page = (await client.get(log_url, headers=headers)).json()

    assert [d["event"]["data"]["visit_id"] for d in page["items"]] == [
        str(i)
        for i in reversed(visit_ids)  # newest first
    ]
    newest = page["items"][0]
    assert newest["status"] == "pending" and newest["attempts"] == 0
    assert newest["next_attempt_at"] is not None and newest["delivered_at"] is None
    assert newest["webhook_id"] == hook["id"]
    event = newest["event"]
    assert event["type"] == "visit.created"
    assert event["household_id"] == str(household.id)
    assert event["village_code"] == VILLAGE_A1
    assert event["data"]["household_id"] == str(household.id)

    one = await client.get(log_url, params={"limit": 1}, headers=headers)
    assert len(one.json()["items"]) == 1 and one.json()["next_cursor"]
    delivered = await client.get(log_url, params={"status": "delivered"}, headers=headers)
    assert delivered.json()["items"] == []
    _problem(
        await client.get(log_url, params={"status": "lost"}, headers=headers),
        422,
        "validation_failed",
    )

    redeliver = f"{log_url}/{newest['id']}/redeliver"
    queued = await client.post(redeliver, headers=headers)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "pending"
    _problem(
        await client.post(f"{log_url}/{uuid.uuid4()}/redeliver", headers=headers),
        404,
        "delivery_not_found",
    )
    _problem(
        await client.post(redeliver, headers=world.headers("admin_b")), 404, "webhook_not_found"
    )

    await client.post(f"{API}/webhooks/{hook['id']}/disable", headers=headers)
    _problem(await client.post(redeliver, headers=headers), 409, "webhook_disabled")
    # The log of a disabled webhook stays readable.
    assert len((await client.get(log_url, headers=headers)).json()["items"]) == 2


async def test_every_event_type_is_documented_with_its_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    document = (await client.get("/openapi.json")).json()
    create = document["paths"]["/api/v1/webhooks"]["post"]
    assert "`webhook-id`, `webhook-timestamp`, `webhook-signature`" in create["description"]
    for event_type in ALL_TYPES:
        assert event_type in create["description"]
