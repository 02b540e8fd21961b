"""Changing an account ends its logins; a token's scope bounds what it may do."""

from __future__ import annotations

import pytest

from app.users import service as users_service
from app.users.models import Role
from app.users.schemas import UserCreate
from tests.builders import PASSWORD, VILLAGE_A1, VILLAGE_A2, World


async def _login(client, username: str, scope: str | None = None) -> str:  # type: ignore[no-untyped-def]
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    if scope:
        form["scope"] = scope
    response = await client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.mark.parametrize(
    ("role", "regions", "password"),
    [
        (Role.first_secretary, [VILLAGE_A1], PASSWORD),  # role changed
        (Role.officer, [VILLAGE_A2], PASSWORD),  # villages changed
        (Role.officer, [VILLAGE_A1], "a-new-password-1"),  # password reset
    ],
)
async def test_changing_an_account_revokes_its_logins(  # type: ignore[no-untyped-def]
    client, session, world: World, role: Role, regions: list[str], password: str
) -> None:
    username = world.users["officer_a1"].username
    token = await _login(client, username)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200

    await users_service.upsert_user(
        session,
        data=UserCreate(username=username, password=password, role=role, regions=regions),
    )
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


async def test_rerunning_with_the_same_account_keeps_logins(client, session, world: World) -> None:  # type: ignore[no-untyped-def]
    username = world.users["officer_a1"].username
    token = await _login(client, username)
    await users_service.upsert_user(
        session,
        data=UserCreate(
            username=username, password=PASSWORD, role=Role.officer, regions=[VILLAGE_A1]
        ),
    )
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200


async def test_a_read_only_token_cannot_write(client, world: World) -> None:  # type: ignore[no-untyped-def]
    token = await _login(client, world.users["admin_a"].username, scope="households:read")
    headers = {"Authorization": f"Bearer {token}"}
    household = world.households["a1"]
    assert (
        await client.get(f"/api/v1/households/{household.id}", headers=headers)
    ).status_code == 200

    response = await client.post(
        "/api/v1/regions", json={"code": "371522101209", "name": "新村"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    patch = await client.patch(
        f"/api/v1/households/{household.id}",
        json={"head_name": "改名"},
        headers={**headers, "If-Match": f'"v{household.version}"'},
    )
    assert patch.status_code == 403 and patch.json()["code"] == "insufficient_scope"


async def test_a_token_without_read_scope_cannot_read(client, world: World) -> None:  # type: ignore[no-untyped-def]
    token = await _login(client, world.users["admin_a"].username, scope="regions:write")
    response = await client.get("/api/v1/households", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"
