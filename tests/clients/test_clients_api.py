"""POST/GET /clients, rotate and disable: a county admin manages the county's API clients."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import TokenFamily
from app.clients.models import ApiClient
from app.core.security import verify_password
from app.users.models import User, UserRegion
from tests.assertions import problem
from tests.auth.test_tokens import assert_oauth_error
from tests.builders import COUNTY_A, PASSWORD, TOWN_A1, VILLAGE_A1, VILLAGE_B1, World
from tests.clients.builders import API, TOKEN_URL, basic, client_token, make_client

CLIENTS = f"{API}/clients"


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "name": "聊城市防返贫监测平台",
        "region_code": TOWN_A1,
        "scopes": ["progress:read", "households:read"],
        **changes,
    }


async def _create(client: httpx.AsyncClient, world: World, **changes: Any) -> httpx.Response:
    return await client.post(CLIENTS, json=_body(**changes), headers=world.headers("admin_a"))


async def test_register_shows_the_secret_once_and_stores_a_hash(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    response = await _create(client, world)

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{CLIENTS}/{body['client_id']}"
    assert response.headers["cache-control"] == "no-store"
    assert body["name"] == "聊城市防返贫监测平台"
    assert body["region_code"] == TOWN_A1
    assert body["scopes"] == ["households:read", "progress:read"]  # canonical order
    assert body["created_by"] == str(world.users["admin_a"].id)
    assert body["disabled"] is False and body["disabled_at"] is None
    assert body["rotated_at"] is None
    secret = body["client_secret"]
    assert len(secret) >= 43

    stored = await session.get(ApiClient, uuid.UUID(body["client_id"]))
    assert stored is not None
    assert secret not in stored.secret_hash and stored.secret_hash.startswith("$argon2id$")
    assert verify_password(stored.secret_hash, secret)
    # Its service account: role api_client, its region, no password that could ever verify.
    account = await session.get(User, stored.user_id)
    assert account is not None and account.role == "api_client"
    assert not verify_password(account.password_hash, "")
    regions = (
        await session.scalars(
            select(UserRegion.region_code).where(UserRegion.user_id == account.id)
        )
    ).all()
    assert list(regions) == [TOWN_A1]

    # Never shown again.
    again = await client.get(f"{CLIENTS}/{body['client_id']}", headers=world.headers("admin_a"))
    assert again.status_code == 200, again.text
    assert "client_secret" not in again.json()
    assert {k: v for k, v in body.items() if k != "client_secret"} == again.json()


async def test_the_service_account_cannot_log_in_with_a_password(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    registered = await make_client(session, admin=world.users["admin_a"], region=VILLAGE_A1)
    account = await session.get(User, registered.client.user_id)
    assert account is not None
    for password in (PASSWORD, registered.secret, "!api-client", " "):
        response = await client.post(
            TOKEN_URL,
            data={"grant_type": "password", "username": account.username, "password": password},
        )
        assert_oauth_error(response, "invalid_grant")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"region_code": VILLAGE_B1}, "body.region_code"),  # another county
        ({"region_code": "371500000000"}, "body.region_code"),  # above the admin's county
        ({"region_code": "371522109201"}, "body.region_code"),  # does not exist
        ({"region_code": "王庄村"}, "body.region_code"),
        ({"scopes": ["households:write"]}, "body.scopes.0"),  # clients are read-only
        ({"scopes": ["households:read", "users:write"]}, "body.scopes.1"),
        ({"scopes": []}, "body.scopes"),
        ({"name": ""}, "body.name"),
        ({"name": "平台" * 51}, "body.name"),
        ({"secret": "mine"}, "body.secret"),
    ],
)
async def test_invalid_registrations_name_the_field(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    changes: dict[str, Any],
    field: str,
) -> None:
    response = await _create(client, world, **changes)
    problem(response, 422, "validation_failed", field)
    assert (await session.scalars(select(ApiClient))).all() == []


async def test_an_admin_cannot_grant_what_their_token_lacks(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": world.users["admin_a"].username,
            "password": PASSWORD,
            "scope": "households:read users:write",
        },
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    refused = await client.post(
        CLIENTS, json=_body(scopes=["households:read", "pii:read"]), headers=headers
    )
    problem(refused, 403, "insufficient_scope")
    allowed = await client.post(CLIENTS, json=_body(scopes=["households:read"]), headers=headers)
    assert allowed.status_code == 201, allowed.text


async def test_the_list_pages_through_the_county_s_clients_only(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    ids = set()
    for n in range(3):
        response = await _create(client, world, name=f"平台{n}")
        assert response.status_code == 201, response.text
        ids.add(response.json()["client_id"])
    other = await make_client(session, admin=world.users["admin_b"], region=VILLAGE_B1)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await client.get(CLIENTS, params=params, headers=world.headers("admin_a"))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        assert all("client_secret" not in item for item in body["items"])
        seen += [item["client_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3
    assert set(seen) == ids

    theirs = await client.get(CLIENTS, headers=world.headers("admin_b"))
    assert [item["client_id"] for item in theirs.json()["items"]] == [other.client_id]


async def test_another_county_s_client_looks_like_a_missing_one(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    other = await make_client(session, admin=world.users["admin_b"], region=VILLAGE_B1)
    for suffix, method in (("", "GET"), ("/rotate", "POST"), ("/disable", "POST")):
        hidden = await client.request(
            method, f"{CLIENTS}/{other.client_id}{suffix}", headers=world.headers("admin_a")
        )
        missing = await client.request(
            method, f"{CLIENTS}/{uuid.uuid4()}{suffix}", headers=world.headers("admin_a")
        )
        hidden_body = problem(hidden, 404, "client_not_found")
        missing_body = problem(missing, 404, "client_not_found")
        assert set(hidden_body) == set(missing_body)
    assert other.client.disabled_at is None
    assert (await client_token(client, other)).status_code == 200


@pytest.mark.parametrize("who", ["officer_a1", "secretary_a1"])
async def test_only_a_county_admin_manages_clients(
    client: httpx.AsyncClient, session: AsyncSession, world: World, who: str
) -> None:
    registered = await make_client(session, admin=world.users["admin_a"], region=VILLAGE_A1)
    headers = world.headers(who)
    problem(await client.post(CLIENTS, json=_body(), headers=headers), 403, "forbidden")
    problem(await client.get(CLIENTS, headers=headers), 403, "forbidden")
    url = f"{CLIENTS}/{registered.client_id}"
    problem(await client.get(url, headers=headers), 403, "forbidden")
    problem(await client.post(f"{url}/rotate", headers=headers), 403, "forbidden")
    problem(await client.post(f"{url}/disable", headers=headers), 403, "forbidden")


async def test_rotation_replaces_the_secret_and_revokes_the_old_tokens(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    registered = await make_client(session, admin=world.users["admin_a"], region=VILLAGE_A1)
    old = await client_token(client, registered)
    assert old.status_code == 200, old.text
    old_headers = {"Authorization": f"Bearer {old.json()['access_token']}"}
    assert (await client.get(f"{API}/me", headers=old_headers)).status_code == 200

    rotated = await client.post(
        f"{CLIENTS}/{registered.client_id}/rotate", headers=world.headers("admin_a")
    )

    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    body = rotated.json()
    new_secret = body["client_secret"]
    assert new_secret != registered.secret
    assert body["rotated_at"] is not None
    # The old secret is refused, the token issued under it too, at once.
    assert_oauth_error(await client_token(client, registered), "invalid_client", status=401)
    gone = await client.get(f"{API}/me", headers=old_headers)
    problem(gone, 401, "not_authenticated")
    # The new one works.
    fresh = await client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers=basic(registered.client_id, new_secret),
    )
    assert fresh.status_code == 200, fresh.text
    me = await client.get(
        f"{API}/me", headers={"Authorization": f"Bearer {fresh.json()['access_token']}"}
    )
    assert me.status_code == 200, me.text
    families = (
        await session.scalars(
            select(TokenFamily).where(TokenFamily.user_id == registered.client.user_id)
        )
    ).all()
    assert sorted(f.revoked_reason or "" for f in families) == ["", "client_secret_rotated"]


async def test_disabling_stops_its_tokens_at_once_and_for_good(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    registered = await make_client(session, admin=world.users["admin_a"], region=VILLAGE_A1)
    token = await client_token(client, registered)
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    url = f"{CLIENTS}/{registered.client_id}"

    disabled = await client.post(f"{url}/disable", headers=world.headers("admin_a"))

    assert disabled.status_code == 200, disabled.text
    body = disabled.json()
    assert body["disabled"] is True and body["disabled_at"] is not None
    assert "client_secret" not in body
    problem(await client.get(f"{API}/households", headers=headers), 401, "not_authenticated")
    assert_oauth_error(await client_token(client, registered), "invalid_client", status=401)
    # Again: nothing changes; rotating cannot bring it back.
    again = await client.post(f"{url}/disable", headers=world.headers("admin_a"))
    assert again.status_code == 200, again.text
    assert again.json()["disabled_at"] == body["disabled_at"]
    problem(
        await client.post(f"{url}/rotate", headers=world.headers("admin_a")),
        409,
        "client_disabled",
    )
    assert_oauth_error(await client_token(client, registered), "invalid_client", status=401)


async def test_the_county_s_admin_manages_clients_of_its_towns_and_villages(
    client: httpx.AsyncClient, world: World
) -> None:
    for region in (COUNTY_A, TOWN_A1, VILLAGE_A1):
        response = await _create(client, world, region_code=region)
        assert response.status_code == 201, response.text
        assert response.json()["region_code"] == region
