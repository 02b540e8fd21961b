"""/users: a county admin creates, lists, reads, disables and reassigns the county's accounts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.users.models import Role, User
from tests.assertions import problem
from tests.auth.test_tokens import TOKEN_URL, assert_oauth_error, me_status, refresh, tokens
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    PASSWORD,
    TOWN_A1,
    TOWN_A2,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_user,
)
from tests.clients.builders import make_client, minted_token

USERS = "/api/v1/users"
NEW_PASSWORD = "a-brand-new-password"


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "username": f"officer.{uuid.uuid4().hex[:8]}",
        "display_name": "王庄村 信息员 张伟",
        "role": "officer",
        "password": "initial-password-2026",
        "regions": [VILLAGE_A1, VILLAGE_A2],
        **changes,
    }


async def _create(
    client: httpx.AsyncClient, world: World, who: str = "admin_a", **changes: Any
) -> httpx.Response:
    return await client.post(USERS, json=_body(**changes), headers=world.headers(who))


async def _password_login(
    client: httpx.AsyncClient, username: str, password: str
) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password}
    return await client.post(TOKEN_URL, data=form)


async def test_create_answers_the_user_without_a_password_and_it_can_log_in(
    client: httpx.AsyncClient, world: World
) -> None:
    body = _body(regions=[VILLAGE_A2, VILLAGE_A1, VILLAGE_A1], display_name=" 张伟 ")

    response = await client.post(USERS, json=body, headers=world.headers("admin_a"))

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {
        "id",
        "username",
        "display_name",
        "role",
        "role_label",
        "is_active",
        "regions",
        "created_at",
        "updated_at",
    }
    assert created["username"] == body["username"]
    assert created["display_name"] == "张伟"
    assert (created["role"], created["role_label"]) == ("officer", "信息员")
    assert created["is_active"] is True
    assert created["regions"] == [VILLAGE_A1, VILLAGE_A2]
    assert response.headers["location"] == f"{USERS}/{created['id']}"
    again = await client.get(response.headers["location"], headers=world.headers("admin_a"))
    assert again.status_code == 200 and again.json() == created

    login = await _password_login(client, body["username"], body["password"])
    assert login.status_code == 200, login.text
    assert await me_status(client, login.json()["access_token"]) == 200


@pytest.mark.parametrize(
    ("role", "regions"),
    [
        ("first_secretary", [VILLAGE_A3]),
        ("town_staff", [TOWN_A2]),
        ("county_admin", [COUNTY_A]),
    ],
)
async def test_each_role_is_created_with_its_level_of_region(
    client: httpx.AsyncClient, world: World, role: str, regions: list[str]
) -> None:
    response = await _create(client, world, role=role, regions=regions)
    assert response.status_code == 201, response.text
    assert response.json()["role"] == role and response.json()["regions"] == regions


@pytest.mark.parametrize(
    ("changes", "field", "type_"),
    [
        ({"regions": [VILLAGE_A1, VILLAGE_B1]}, "body.regions.1", "not_yours"),  # county B's
        ({"regions": ["371522101299"]}, "body.regions.0", "not_yours"),  # no such village
        ({"regions": [TOWN_A1]}, "body.regions.0", "wrong_level"),  # an officer's are villages
        ({"role": "town_staff", "regions": [VILLAGE_A1]}, "body.regions.0", "wrong_level"),
        ({"role": "town_staff", "regions": [TOWN_A1, TOWN_A2]}, "body.regions.1", "too_many"),
        ({"role": "county_admin", "regions": [COUNTY_B]}, "body.regions.0", "not_yours"),
    ],
)
async def test_regions_must_be_in_your_county_and_of_the_roles_level(
    client: httpx.AsyncClient, world: World, changes: dict[str, Any], field: str, type_: str
) -> None:
    body = problem(await _create(client, world, **changes), 422, "validation_failed", field)
    assert [e["type"] for e in body["errors"] if e["field"] == field] == [type_]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"password": "Xq7#zz"}, "body.password"),
        ({"role": "api_client"}, "body.role"),
        ({"username": "no spaces"}, "body.username"),
        ({"regions": []}, "body.regions"),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, world: World, changes: dict[str, Any], field: str
) -> None:
    response = await _create(client, world, **changes)
    problem(response, 422, "validation_failed", field)
    assert _body(**changes)["password"] not in response.text  # never echoed


async def test_a_taken_username_is_409(client: httpx.AsyncClient, world: World) -> None:
    taken = world.users["officer_a2"].username
    body = problem(await _create(client, world, username=taken), 409, "username_taken")
    assert body["errors"][0]["field"] == "body.username"
    # Taken in another county too: usernames are global.
    other = world.users["admin_b"].username
    problem(await _create(client, world, username=other), 409, "username_taken")


async def test_the_list_pages_filters_and_shows_only_the_county(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = world.headers("admin_a")
    for i in range(3):
        response = await _create(
            client, world, username=f"pager.{i}.{uuid.uuid4().hex[:6]}", display_name=f"翻页{i}"
        )
        assert response.status_code == 201
    # Someone working in both counties is neither admin's.
    await make_user(
        session, username="both.counties", role=Role.officer, regions=[VILLAGE_A1, VILLAGE_B1]
    )

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(USERS, params=params, headers=headers)).json()
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    whole = (await client.get(USERS, headers=headers)).json()
    assert whole["next_cursor"] is None
    assert [u["id"] for u in seen] == [u["id"] for u in whole["items"]]
    county_a = {"officer_a1", "officer_a2", "secretary_a1", "town_a1", "admin_a"}
    names = {u["username"] for u in seen}
    assert {world.users[n].username for n in county_a} <= names
    assert world.users["admin_b"].username not in names
    assert "both.counties" not in names
    assert len(names) == len(county_a) + 3
    assert all("password" not in key for u in seen for key in u)

    async def usernames(**params: Any) -> set[str]:
        response = await client.get(USERS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return {u["username"] for u in response.json()["items"]}

    assert await usernames(role="town_staff") == {world.users["town_a1"].username}
    assert await usernames(region=VILLAGE_A2) == {world.users["officer_a2"].username} | {
        u["username"] for u in seen if u["display_name"].startswith("翻页")
    }
    assert await usernames(region=TOWN_A1) >= {world.users["town_a1"].username}
    assert await usernames(q="翻页1") == {
        u["username"] for u in seen if u["display_name"] == "翻页1"
    }
    assert await usernames(q=world.users["secretary_a1"].username[:14]) == {
        world.users["secretary_a1"].username
    }
    assert await usernames(q="%") == set()  # no wildcard
    assert await usernames(is_active=False) == set()
    assert await usernames(region=COUNTY_B) == set()
    problem(
        await client.get(USERS, params={"region": "371522101299-"}, headers=headers),
        422,
        "validation_failed",
        "query.region",
    )
    problem(
        await client.get(USERS, params={"cursor": "bogus"}, headers=headers),
        422,
        "validation_failed",
        "query.cursor",
    )


async def test_another_countys_admin_finds_nothing(client: httpx.AsyncClient, world: World) -> None:
    officer = world.users["officer_a1"]
    headers = world.headers("admin_b")
    hidden = problem(
        await client.get(f"{USERS}/{officer.id}", headers=headers), 404, "user_not_found"
    )
    missing = problem(
        await client.get(f"{USERS}/{uuid.uuid4()}", headers=headers), 404, "user_not_found"
    )
    assert hidden.keys() == missing.keys() and hidden["title"] == missing["title"]
    for method, suffix, body in (
        ("PATCH", "", {"is_active": False}),
        ("PUT", "/regions", {"regions": [VILLAGE_B1]}),
        ("POST", "/password", {"password": NEW_PASSWORD}),
    ):
        response = await client.request(
            method, f"{USERS}/{officer.id}{suffix}", json=body, headers=headers
        )
        problem(response, 404, "user_not_found")
    # And the officer's logins are untouched.
    assert (await client.get("/api/v1/me", headers=world.headers("officer_a1"))).status_code == 200


@pytest.mark.parametrize("who", ["officer_a1", "secretary_a1", "town_a1"])
async def test_other_roles_are_refused_403(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    headers = world.headers(who)
    problem(await client.get(USERS, headers=headers), 403, "forbidden")
    problem(await _create(client, world, who=who), 403, "forbidden")
    user_id = world.users["officer_a2"].id
    problem(await client.get(f"{USERS}/{user_id}", headers=headers), 403, "forbidden")
    problem(
        await client.post(
            f"{USERS}/{user_id}/password", json={"password": NEW_PASSWORD}, headers=headers
        ),
        403,
        "forbidden",
    )


async def test_an_api_client_is_refused_403(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    registered = await make_client(session, admin=world.users["admin_a"], region=COUNTY_A)
    headers = {"Authorization": f"Bearer {minted_token(registered)}"}
    problem(await client.get(USERS, headers=headers), 403, "forbidden")


async def test_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(USERS)
    problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_disabling_ends_the_logins_and_enabling_needs_a_new_one(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await tokens(client, world, "officer_a1")
    access, refresh_token = login["access_token"], login["refresh_token"]
    assert await me_status(client, access) == 200
    user_url = f"{USERS}/{world.users['officer_a1'].id}"

    disabled = await client.patch(
        user_url, json={"is_active": False}, headers=world.headers("admin_a")
    )

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["is_active"] is False
    assert await me_status(client, access) == 401
    problem(
        await client.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"}),
        401,
        "not_authenticated",
    )
    assert_oauth_error(await refresh(client, refresh_token), "invalid_grant")
    assert_oauth_error(
        await _password_login(client, world.users["officer_a1"].username, PASSWORD),
        "invalid_grant",
    )
    listed = await client.get(USERS, params={"is_active": False}, headers=world.headers("admin_a"))
    assert [u["id"] for u in listed.json()["items"]] == [str(world.users["officer_a1"].id)]

    enabled = await client.patch(
        user_url, json={"is_active": True}, headers=world.headers("admin_a")
    )
    assert enabled.json()["is_active"] is True
    # The logins ended stay ended; a new one works.
    assert await me_status(client, access) == 401
    assert_oauth_error(await refresh(client, refresh_token), "invalid_grant")
    again = await _password_login(client, world.users["officer_a1"].username, PASSWORD)
    assert again.status_code == 200, again.text


async def test_renaming_keeps_the_logins(client: httpx.AsyncClient, world: World) -> None:
    login = await tokens(client, world, "officer_a1")
    response = await client.patch(
        f"{USERS}/{world.users['officer_a1'].id}",
        json={"display_name": "王庄村 张伟"},
        headers=world.headers("admin_a"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "王庄村 张伟"
    assert response.json()["is_active"] is True
    assert await me_status(client, login["access_token"]) == 200
    assert (await refresh(client, login["refresh_token"])).status_code == 200


async def test_an_admin_cannot_disable_themselves(client: httpx.AsyncClient, world: World) -> None:
    url = f"{USERS}/{world.users['admin_a'].id}"
    body = problem(
        await client.patch(url, json={"is_active": False}, headers=world.headers("admin_a")),
        409,
        "cannot_disable_yourself",
    )
    assert "your own account" in body["detail"]
    assert (await client.get("/api/v1/me", headers=world.headers("admin_a"))).status_code == 200
    # Renaming yourself is fine.
    renamed = await client.patch(
        url, json={"display_name": "县中心 王"}, headers=world.headers("admin_a")
    )
    assert renamed.status_code == 200, renamed.text


async def test_replacing_regions_changes_what_the_user_sees_and_ends_no_login(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await tokens(client, world, "officer_a1")
    access = {"Authorization": f"Bearer {login['access_token']}"}
    url = f"{USERS}/{world.users['officer_a1'].id}/regions"

    response = await client.put(
        url, json={"regions": [VILLAGE_A3, VILLAGE_A2]}, headers=world.headers("admin_a")
    )

    assert response.status_code == 200, response.text
    assert response.json()["regions"] == [VILLAGE_A2, VILLAGE_A3]
    assert await me_status(client, login["access_token"]) == 200
    households = (await client.get("/api/v1/households", headers=access)).json()["items"]
    assert {h["village_code"] for h in households} == {VILLAGE_A2}
    assert (await refresh(client, login["refresh_token"])).status_code == 200

    body = problem(
        await client.put(url, json={"regions": [TOWN_A1]}, headers=world.headers("admin_a")),
        422,
        "validation_failed",
        "body.regions.0",
    )
    assert body["errors"][0]["type"] == "wrong_level"
    problem(
        await client.put(url, json={"regions": [VILLAGE_B1]}, headers=world.headers("admin_a")),
        422,
        "validation_failed",
        "body.regions.0",
    )


async def test_a_password_reset_ends_the_logins_and_the_new_password_works(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    officer = world.users["officer_a1"]
    login = await tokens(client, world, "officer_a1")

    response = await client.post(
        f"{USERS}/{officer.id}/password",
        json={"password": NEW_PASSWORD},
        headers=world.headers("admin_a"),
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(officer.id)
    assert NEW_PASSWORD not in response.text
    assert await me_status(client, login["access_token"]) == 401
    assert_oauth_error(await refresh(client, login["refresh_token"]), "invalid_grant")
    assert_oauth_error(await _password_login(client, officer.username, PASSWORD), "invalid_grant")
    fresh = await _password_login(client, officer.username, NEW_PASSWORD)
    assert fresh.status_code == 200, fresh.text
    assert await me_status(client, fresh.json()["access_token"]) == 200
    stored = await session.get(User, officer.id, populate_existing=True)
    assert stored is not None and NEW_PASSWORD not in stored.password_hash
    assert stored.password_hash.startswith("$argon2")

    problem(
        await client.post(
            f"{USERS}/{officer.id}/password",
            json={"password": "short"},
            headers=world.headers("admin_a"),
        ),
        422,
        "validation_failed",
        "body.password",
    )
