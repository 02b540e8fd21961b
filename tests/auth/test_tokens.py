"""Token endpoint (RFC 6749): refresh rotation, reuse detection, revocation (RFC 7009), /me."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from jose import jwt
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RefreshToken, TokenFamily
from app.auth.principal import ROLE_SCOPES
from app.core.config import get_settings
from app.users.models import Role
from tests.builders import COUNTY_A, PASSWORD, VILLAGE_A1, World

TOKEN_URL = "/api/v1/auth/token"
REVOKE_URL = "/api/v1/auth/revoke"
ME_URL = "/api/v1/me"
DEVICE = "android-7f3a9c"


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def login(
    client: httpx.AsyncClient, world: World, who: str = "officer_a1", **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "password",
        "username": world.users[who].username,
        "password": PASSWORD,
        **extra,
    }
    return await client.post(TOKEN_URL, data=form)


async def tokens(
    client: httpx.AsyncClient, world: World, who: str = "officer_a1", **extra: str
) -> dict[str, Any]:
    response = await login(client, world, who, **extra)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, refresh_token: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await client.post(TOKEN_URL, data=form)


async def me_status(client: httpx.AsyncClient, access_token: str) -> int:
    return (await client.get(ME_URL, headers=bearer(access_token))).status_code


def assert_oauth_error(response: httpx.Response, error: str, *, status: int = 400) -> None:
    """RFC 6749 §5.2: plain JSON with `error`, never cached; not a problem document."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    assert set(body) <= {"error", "error_description", "error_uri"}, body
    assert "type" not in body and "status" not in body


async def family_of(session: AsyncSession, refresh_token: str) -> TokenFamily:
    digest = hashlib.sha256(refresh_token.encode()).hexdigest()
    family = await session.scalar(
        select(TokenFamily)
        .join(RefreshToken, RefreshToken.family_id == TokenFamily.id)
        .where(RefreshToken.token_hash == digest)
        .execution_options(populate_existing=True)
    )
    assert family is not None
    return family


# --- password grant -------------------------------------------------------------------------


async def test_password_grant_issues_tokens(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    settings = get_settings()
    response = await login(client, world, device_id=DEVICE)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == settings.access_token_minutes * 60
    assert set(body["scope"].split()) == set(ROLE_SCOPES[Role.officer])
    assert body["refresh_token"] != body["access_token"]

    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    claims = jwt.get_unverified_claims(body["access_token"])
    user = world.users["officer_a1"]
    assert claims["sub"] == str(user.id)
    assert claims["iss"] == settings.jwt_issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["exp"] - claims["iat"] == body["expires_in"]

    # The refresh token is stored only as its SHA-256, and lives the configured number of days.
    family = await family_of(session, body["refresh_token"])
    assert family.user_id == user.id
    assert family.device_id == DEVICE
    stored = (
        await session.scalars(select(RefreshToken).where(RefreshToken.family_id == family.id))
    ).all()
    assert len(stored) == 1
    assert stored[0].token_hash != body["refresh_token"]
    lifetime = stored[0].expires_at - datetime.now(UTC)
    assert abs(lifetime - timedelta(days=settings.refresh_token_days)) < timedelta(minutes=5)

    assert await me_status(client, body["access_token"]) == 200


async def test_password_grant_with_narrower_scope(client: httpx.AsyncClient, world: World) -> None:
    body = await tokens(client, world, scope="households:read")
    assert body["scope"] == "households:read"
    me = await client.get(ME_URL, headers=bearer(body["access_token"]))
    assert me.json()["scope"] == "households:read"


@pytest.mark.parametrize("case", ["wrong_password", "unknown_user", "disabled_user"])
async def test_bad_credentials_are_invalid_grant(
    client: httpx.AsyncClient, world: World, session: AsyncSession, case: str
) -> None:
    user = world.users["officer_a1"]
    username, password = user.username, PASSWORD
    if case == "wrong_password":
        password = PASSWORD + "!"
    elif case == "unknown_user":
        username = "nobody-" + user.username
    else:
        user.is_active = False
        await session.flush()
    families_before = await session.scalar(select(func.count()).select_from(TokenFamily))

    response = await client.post(
        TOKEN_URL, data={"grant_type": "password", "username": username, "password": password}
    )

    assert_oauth_error(response, "invalid_grant")
    # The same answer whatever was wrong: usernames cannot be enumerated.
    assert response.json()["error_description"] == (
        "wrong username or password, or the account is disabled"
    )
    assert "www-authenticate" not in response.headers
    families_after = await session.scalar(select(func.count()).select_from(TokenFamily))
    assert families_after == families_before


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({}, id="empty"),
        pytest.param({"username": "someone", "password": "x"}, id="no-grant-type"),
        pytest.param({"grant_type": ""}, id="empty-grant-type"),
        pytest.param({"grant_type": "password", "username": "someone"}, id="no-password"),
        pytest.param({"grant_type": "password", "password": "x"}, id="no-username"),
        pytest.param({"grant_type": "refresh_token"}, id="no-refresh-token"),
        pytest.param(
            {"grant_type": "refresh_token", "refresh_token": "x" * 300}, id="huge-refresh-token"
        ),
    ],
)
async def test_incomplete_requests_are_invalid_request(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    assert_oauth_error(await client.post(TOKEN_URL, data=form), "invalid_request")


async def test_json_body_is_not_accepted(client: httpx.AsyncClient, world: World) -> None:
    payload = {
        "grant_type": "password",
        "username": world.users["officer_a1"].username,
        "password": PASSWORD,
    }
    assert_oauth_error(await client.post(TOKEN_URL, json=payload), "invalid_request")


async def test_bad_device_id_is_invalid_request(client: httpx.AsyncClient, world: World) -> None:
    assert_oauth_error(await login(client, world, device_id="my phone!"), "invalid_request")


@pytest.mark.parametrize("grant_type", ["authorization_code", "implicit", "PASSWORD"])
async def test_unknown_grant_type(client: httpx.AsyncClient, grant_type: str) -> None:
    response = await client.post(
        TOKEN_URL, data={"grant_type": grant_type, "username": "u", "password": "p"}
    )
    assert_oauth_error(response, "unsupported_grant_type")


@pytest.mark.parametrize("scope", ["regions:write", "households:read admin", "pii:write"])
async def test_scope_beyond_the_role_is_invalid_scope(
    client: httpx.AsyncClient, world: World, session: AsyncSession, scope: str
) -> None:
    before = await session.scalar(select(func.count()).select_from(TokenFamily))
    assert_oauth_error(await login(client, world, scope=scope), "invalid_scope")
    assert await session.scalar(select(func.count()).select_from(TokenFamily)) == before


# --- refresh rotation -----------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(client: httpx.AsyncClient, world: World) -> None:
    first = await tokens(client, world, device_id=DEVICE)

    response = await refresh(client, first["refresh_token"], device_id=DEVICE)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    assert (
        jwt.get_unverified_claims(second["access_token"])["sid"]
        == (jwt.get_unverified_claims(first["access_token"])["sid"])
    )
    assert await me_status(client, second["access_token"]) == 200

    third = await refresh(client, second["refresh_token"], device_id=DEVICE)
    assert third.status_code == 200, third.text
    assert third.json()["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


async def test_refresh_may_narrow_but_not_widen_the_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await tokens(client, world, scope="households:read households:write")

    widened = await refresh(client, first["refresh_token"], scope="households:read pii:read")
    assert_oauth_error(widened, "invalid_scope")

    narrowed = await refresh(client, first["refresh_token"], scope="households:read")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "households:read"
    me = await client.get(ME_URL, headers=bearer(narrowed.json()["access_token"]))
    assert me.json()["scope"] == "households:read"

    # Without a scope, a refresh gets what the login was granted (RFC 6749 §6).
    again = await refresh(client, narrowed.json()["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "households:read households:write"


async def test_reused_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    first = await tokens(client, world, device_id=DEVICE)
    other_login = await tokens(client, world, device_id="android-other")
    second = (await refresh(client, first["refresh_token"], device_id=DEVICE)).json()
    third = (await refresh(client, second["refresh_token"], device_id=DEVICE)).json()

    # A thief replays the stolen, already rotated token.
    stolen = await refresh(client, first["refresh_token"], device_id=DEVICE)
    assert_oauth_error(stolen, "invalid_grant")

    # Later requests show that the revocation was committed: every token of the login is dead…
    assert_oauth_error(
        await refresh(client, third["refresh_token"], device_id=DEVICE), "invalid_grant"
    )
    for access in (first["access_token"], second["access_token"], third["access_token"]):
        assert await me_status(client, access) == 401
    family = await family_of(session, first["refresh_token"])
    assert family.revoked_at is not None
    assert family.revoked_reason == "refresh_token_reuse"

    # …while the user's other logins and other users are untouched.
    assert await me_status(client, other_login["access_token"]) == 200
    assert (
        await refresh(client, other_login["refresh_token"], device_id="android-other")
    ).is_success
    assert (await client.get(ME_URL, headers=world.headers("officer_a1"))).status_code == 200
    assert (await client.get(ME_URL, headers=world.headers("admin_a"))).status_code == 200


async def test_refresh_from_another_device_revokes_the_family(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    first = await tokens(client, world, device_id=DEVICE)

    assert_oauth_error(
        await refresh(client, first["refresh_token"], device_id="android-thief"), "invalid_grant"
    )

    # The rightful phone cannot use it any more either: the login is revoked.
    assert_oauth_error(
        await refresh(client, first["refresh_token"], device_id=DEVICE), "invalid_grant"
    )
    assert await me_status(client, first["access_token"]) == 401
    family = await family_of(session, first["refresh_token"])
    assert family.revoked_reason == "device_mismatch"


async def test_a_refresh_without_device_id_continues_on_the_bound_device(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    """Standard OAuth2 libraries send no device_id: the login must go on (issue 17)."""
    first = await tokens(client, world, device_id=DEVICE)

    response = await refresh(client, first["refresh_token"])

    assert response.status_code == 200, response.text
    second = response.json()
    assert await me_status(client, second["access_token"]) == 200
    family = await family_of(session, second["refresh_token"])
    assert (family.device_id, family.revoked_at) == (DEVICE, None)
    # And again, still without it.
    assert (await refresh(client, second["refresh_token"])).status_code == 200


async def test_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    first = await tokens(client, world, device_id=DEVICE)
    await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == hashlib.sha256(first["refresh_token"].encode()).hexdigest()
        )
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )

    response = await refresh(client, first["refresh_token"], device_id=DEVICE)

    assert_oauth_error(response, "invalid_grant")
    assert "expired" in response.json()["error_description"]


async def test_refresh_of_a_disabled_account_is_refused(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    first = await tokens(client, world)
    world.users["officer_a1"].is_active = False
    await session.flush()
    assert_oauth_error(await refresh(client, first["refresh_token"]), "invalid_grant")


@pytest.mark.parametrize("kind", ["unknown", "access_token"])
async def test_refresh_with_something_else_is_invalid_grant(
    client: httpx.AsyncClient, world: World, kind: str
) -> None:
    token = "not-a-refresh-token" if kind == "unknown" else world.tokens["officer_a1"][:256]
    assert_oauth_error(await refresh(client, token), "invalid_grant")


# --- revocation (RFC 7009) ------------------------------------------------------------------


async def test_revoke_unknown_token_answers_200(client: httpx.AsyncClient) -> None:
    response = await client.post(REVOKE_URL, data={"token": "never-issued"})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


async def test_revoke_without_token_is_invalid_request(client: httpx.AsyncClient) -> None:
    assert_oauth_error(await client.post(REVOKE_URL, data={}), "invalid_request")
    assert_oauth_error(
        await client.post(REVOKE_URL, data={"token_type_hint": "access_token"}), "invalid_request"
    )


@pytest.mark.parametrize(
    ("which", "hint"),
    [
        ("refresh_token", None),
        ("refresh_token", "refresh_token"),
        ("access_token", None),
        ("access_token", "access_token"),
        ("refresh_token", "access_token"),  # a wrong hint is only a hint
    ],
)
async def test_revoking_either_token_kills_the_login(
    client: httpx.AsyncClient, world: World, session: AsyncSession, which: str, hint: str | None
) -> None:
    issued = await tokens(client, world, device_id=DEVICE)
    rotated = (await refresh(client, issued["refresh_token"], device_id=DEVICE)).json()
    other_login = await tokens(client, world, "officer_a1")
    form = {"token": rotated[which]}
    if hint:
        form["token_type_hint"] = hint

    response = await client.post(REVOKE_URL, data=form)

    assert response.status_code == 200, response.text
    assert_oauth_error(
        await refresh(client, rotated["refresh_token"], device_id=DEVICE), "invalid_grant"
    )
    assert await me_status(client, rotated["access_token"]) == 401
    assert await me_status(client, issued["access_token"]) == 401
    assert (await family_of(session, issued["refresh_token"])).revoked_reason == (
        "revoked_by_client"
    )
    # Only that login: the user's other login still works.
    assert await me_status(client, other_login["access_token"]) == 200
    # Revoking again is fine.
    assert (await client.post(REVOKE_URL, data=form)).status_code == 200


async def test_revoke_world_access_token(client: httpx.AsyncClient, world: World) -> None:
    """Access tokens issued without a refresh token (the builders' logins) can be revoked too."""
    response = await client.post(REVOKE_URL, data={"token": world.tokens["admin_a"]})
    assert response.status_code == 200
    assert (await client.get(ME_URL, headers=world.headers("admin_a"))).status_code == 401
    assert (await client.get(ME_URL, headers=world.headers("admin_b"))).status_code == 200


# --- /me ------------------------------------------------------------------------------------


async def test_me_describes_the_caller(client: httpx.AsyncClient, world: World) -> None:
    issued = await tokens(client, world, device_id=DEVICE)

    response = await client.get(ME_URL, headers=bearer(issued["access_token"]))

    assert response.status_code == 200, response.text
    me = response.json()
    user = world.users["officer_a1"]
    assert me["id"] == str(user.id)
    assert me["username"] == user.username
    assert me["role"] == "officer"
    assert me["role_label"] == "信息员"
    assert me["regions"] == [{"code": VILLAGE_A1, "name": "王庄村", "level": 5}]
    assert set(me["scope"].split()) == set(ROLE_SCOPES[Role.officer])
    assert me["device_id"] == DEVICE


async def test_me_of_a_county_admin(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(ME_URL, headers=world.headers("admin_a"))
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["role"] == "county_admin"
    assert me["regions"] == [{"code": COUNTY_A, "name": "莘县", "level": 3}]
    assert set(me["scope"].split()) == set(ROLE_SCOPES[Role.county_admin])
    assert me["device_id"] is None


async def test_a_multipart_token_request_without_a_boundary_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    """schemathesis found a 500 here: the login rate limit read the form and failed (issue 17)."""
    response = await client.post(
        "/api/v1/auth/token",
        content=b"grant_type=password&username=a&password=b",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert response.status_code == 400, response.text
