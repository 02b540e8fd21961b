"""grant_type=client_credentials (RFC 6749 §4.4): HTTP Basic or the form, scopes, errors."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from tests.assertions import problem
from tests.auth.test_tokens import assert_oauth_error
from tests.builders import VILLAGE_A1, World
from tests.clients.builders import (
    API,
    READ_ONLY,
    TOKEN_URL,
    Registered,
    basic,
    client_token,
    make_client,
)

GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
async def registered(session: AsyncSession, world: World) -> Registered:
    return await make_client(session, admin=world.users["admin_a"], region=VILLAGE_A1)


def _check_token(response: httpx.Response, scope: str) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["scope"] == scope
    # Short-lived, and no refresh token (RFC 6749 §4.4.3): a client asks again.
    assert body["expires_in"] == 15 * 60 == get_settings().client_token_minutes * 60
    assert "refresh_token" not in body
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["role"] == "api_client"
    return str(body["access_token"])


async def test_http_basic(client: httpx.AsyncClient, registered: Registered) -> None:
    token = _check_token(await client_token(client, registered), " ".join(READ_ONLY))

    me = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["role"] == "api_client"
    assert body["role_label"] == "第三方应用"
    assert body["username"] == f"client:{registered.client_id}"
    assert [r["code"] for r in body["regions"]] == [VILLAGE_A1]
    assert set(body["scope"].split()) == set(READ_ONLY)
    assert body["device_id"] is None


async def test_client_id_and_secret_in_the_form(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    response = await client.post(
        TOKEN_URL,
        data=GRANT | {"client_id": registered.client_id, "client_secret": registered.secret},
    )
    _check_token(response, " ".join(READ_ONLY))


async def test_basic_credentials_are_form_urlencoded_first(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    """RFC 6749 §2.3.1: the id and secret are form-urlencoded, then Basic-encoded."""
    encoded_id = registered.client_id.replace("-", "%2D")
    raw = f"{encoded_id}:{registered.secret}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    _check_token(await client.post(TOKEN_URL, data=GRANT, headers=headers), " ".join(READ_ONLY))
    # The form client_id may repeat the Basic one.
    again = await client.post(
        TOKEN_URL,
        data=GRANT | {"client_id": registered.client_id},
        headers=basic(registered.client_id, registered.secret),
    )
    _check_token(again, " ".join(READ_ONLY))


async def test_a_narrower_scope(client: httpx.AsyncClient, registered: Registered) -> None:
    response = await client_token(client, registered, scope="progress:read households:read")
    token = _check_token(response, "households:read progress:read")

    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get(f"{API}/households", headers=headers)).status_code == 200
    refused = await client.get(f"{API}/devices", headers=headers)
    body = problem(refused, 403, "insufficient_scope")
    assert "sync:read" in body["detail"]
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize("scope", ["pii:read", "households:write", "households:read admin"])
async def test_a_scope_not_granted_is_invalid_scope(
    client: httpx.AsyncClient, registered: Registered, scope: str
) -> None:
    assert_oauth_error(await client_token(client, registered, scope=scope), "invalid_scope")


@pytest.mark.parametrize("method", ["basic", "form"])
async def test_a_wrong_secret_is_invalid_client(
    client: httpx.AsyncClient, registered: Registered, method: str
) -> None:
    wrong = registered.secret[:-1] + ("A" if registered.secret[-1] != "A" else "B")
    if method == "basic":
        response = await client.post(
            TOKEN_URL, data=GRANT, headers=basic(registered.client_id, wrong)
        )
    else:
        response = await client.post(
            TOKEN_URL, data=GRANT | {"client_id": registered.client_id, "client_secret": wrong}
        )
    assert_oauth_error(response, "invalid_client", status=401)
    assert response.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "client_id", ["7d1e5b9a-2c4f-4e8b-9a3d-6f0c1b2e3d4a", "not-a-uuid", "x" * 65]
)
async def test_an_unknown_client_is_invalid_client(
    client: httpx.AsyncClient, registered: Registered, client_id: str
) -> None:
    response = await client.post(TOKEN_URL, data=GRANT, headers=basic(client_id, registered.secret))
    assert_oauth_error(response, "invalid_client", status=401)
    assert response.json()["error_description"] == "unknown client or wrong secret"


@pytest.mark.parametrize(
    "authorization",
    ["Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic 4oCd"],
)
async def test_malformed_basic_is_invalid_client(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.post(TOKEN_URL, data=GRANT, headers={"Authorization": authorization})
    assert_oauth_error(response, "invalid_client", status=401)


async def test_no_client_authentication_is_invalid_client(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    for form in ({}, {"client_id": registered.client_id}, {"client_secret": registered.secret}):
        response = await client.post(TOKEN_URL, data=GRANT | form)
        assert_oauth_error(response, "invalid_client", status=401)
    # A bearer token is no client authentication.
    response = await client.post(
        TOKEN_URL, data=GRANT, headers={"Authorization": f"Bearer {registered.secret}"}
    )
    assert_oauth_error(response, "invalid_client", status=401)


async def test_two_authentication_methods_at_once_are_refused(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    """RFC 6749 §2.3: a client must not use more than one method in one request."""
    both = await client.post(
        TOKEN_URL,
        data=GRANT | {"client_secret": registered.secret},
        headers=basic(registered.client_id, registered.secret),
    )
    assert_oauth_error(both, "invalid_request")
    other_id = await client.post(
        TOKEN_URL,
        data=GRANT | {"client_id": str(uuid.uuid4())},
        headers=basic(registered.client_id, registered.secret),
    )
    assert_oauth_error(other_id, "invalid_request")


async def test_a_revoked_token_ends_and_the_secret_gets_a_new_one(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    """RFC 7009 on a client's token revokes the tokens it holds; its secret still works."""
    token = _check_token(await client_token(client, registered), " ".join(READ_ONLY))
    headers = {"Authorization": f"Bearer {token}"}
    revoked = await client.post(f"{API}/auth/revoke", data={"token": token})
    assert revoked.status_code == 200, revoked.text
    problem(await client.get(f"{API}/me", headers=headers), 401, "not_authenticated")

    fresh = _check_token(await client_token(client, registered), " ".join(READ_ONLY))
    me = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {fresh}"})
    assert me.status_code == 200, me.text


async def test_a_client_token_cannot_be_refreshed(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    token = _check_token(await client_token(client, registered), " ".join(READ_ONLY))
    response = await client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": token}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_request", "invalid_grant")
