"""Devices: registered at login, seen by refreshes, listed by visibility, revoked when lost."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import TokenFamily
from app.core.base import utcnow
from app.devices import service as devices_service
from app.devices.models import Device
from app.users.models import User
from tests.assertions import problem
from tests.auth.test_tokens import assert_oauth_error
from tests.builders import PASSWORD, World

TOKEN_URL = "/api/v1/auth/token"
ME_URL = "/api/v1/me"
URL = "/api/v1/devices"
PHONE = "android-7f3a9c"
OTHER_PHONE = "android-22b1e0"


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def login(
    client: httpx.AsyncClient, world: World, who: str, device_id: str, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "password",
        "username": world.users[who].username,
        "password": PASSWORD,
        "device_id": device_id,
        **extra,
    }
    return await client.post(TOKEN_URL, data=form)


async def tokens(
    client: httpx.AsyncClient, world: World, who: str, device_id: str, **extra: str
) -> dict[str, Any]:
    response = await login(client, world, who, device_id, **extra)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def refresh(
    client: httpx.AsyncClient, refresh_token: str, device_id: str, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "device_id": device_id,
        **extra,
    }
    return await client.post(TOKEN_URL, data=form)


async def stored(session: AsyncSession, device_id: str) -> Device:
    device = await session.scalar(
        select(Device).where(Device.id == device_id).execution_options(populate_existing=True)
    )
    assert device is not None
    return device


async def age(session: AsyncSession, device_id: str, by: timedelta) -> datetime:
    """Pretend the device was last seen `by` ago; returns that time."""
    then = utcnow() - by
    await session.execute(update(Device).where(Device.id == device_id).values(last_seen_at=then))
    return then


async def add_device(
    session: AsyncSession, user: User, device_id: str, *, revoked: bool = False
) -> Device:
    now = utcnow()
    device = Device(
        id=device_id,
        user_id=user.id,
        app_version="2.3.1",
        first_seen_at=now,
        last_seen_at=now,
        revoked_at=now if revoked else None,
    )
    session.add(device)
    await session.flush()
    return device


async def listed(
    client: httpx.AsyncClient, world: World, who: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(URL, headers=world.headers(who), params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    return list(body["items"])


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["device_id"] for item in items}


# --- registration at login ------------------------------------------------------------------


async def test_login_registers_the_device(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    before = utcnow()
    await tokens(client, world, "officer_a1", PHONE, app_version="2.3.1")

    device = await stored(session, PHONE)
    assert device.user_id == world.users["officer_a1"].id
    assert device.app_version == "2.3.1"
    assert device.first_seen_at == device.last_seen_at
    assert before - timedelta(seconds=1) <= device.first_seen_at <= utcnow()
    assert device.last_sync_at is None
    assert device.revoked_at is None

    [item] = await listed(client, world, "officer_a1")
    user = world.users["officer_a1"]
    assert item == {
        "device_id": PHONE,
        "user": {
            "id": str(user.id),
            "username": user.username,
            "display_name": user.display_name,
            "role": "officer",
        },
        "app_version": "2.3.1",
        "first_seen_at": item["first_seen_at"],
        "last_seen_at": item["first_seen_at"],
        "last_sync_at": None,
        "revoked": False,
        "revoked_at": None,
    }
    assert datetime.fromisoformat(item["first_seen_at"]) == device.first_seen_at


async def test_login_without_device_registers_nothing(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    form = {
        "grant_type": "password",
        "username": world.users["officer_a1"].username,
        "password": PASSWORD,
        "app_version": "2.3.1",
    }
    assert (await client.post(TOKEN_URL, data=form)).status_code == 200
    assert (await session.scalars(select(Device))).all() == []


async def test_failed_login_registers_nothing(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    response = await login(client, world, "officer_a1", PHONE, password="wrong")
    assert_oauth_error(response, "invalid_grant")
    response = await login(client, world, "officer_a1", PHONE, scope="regions:write")
    assert_oauth_error(response, "invalid_scope")
    assert (await session.scalars(select(Device))).all() == []


async def test_next_login_updates_last_seen_user_and_version(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await tokens(client, world, "officer_a1", PHONE, app_version="2.3.1")
    first_seen = (await stored(session, PHONE)).first_seen_at
    then = await age(session, PHONE, timedelta(hours=2))

    # The phone is handed to a colleague, who logs in with an updated app.
    await tokens(client, world, "officer_a2", PHONE, app_version="2.4.0")

    device = await stored(session, PHONE)
    assert device.user_id == world.users["officer_a2"].id
    assert device.app_version == "2.4.0"
    assert device.first_seen_at == first_seen
    assert device.last_seen_at > then + timedelta(hours=1)

    # A login that reports no version keeps the one known.
    await age(session, PHONE, timedelta(hours=1))
    await tokens(client, world, "officer_a2", PHONE)
    device = await stored(session, PHONE)
    assert device.app_version == "2.4.0"
    assert utcnow() - device.last_seen_at < timedelta(minutes=1)


async def test_a_login_within_a_minute_does_not_rewrite_the_row(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await tokens(client, world, "officer_a1", PHONE, app_version="2.3.1")
    then = await age(session, PHONE, timedelta(seconds=30))

    await tokens(client, world, "officer_a1", PHONE, app_version="2.3.1")

    assert (await stored(session, PHONE)).last_seen_at == then


async def test_refresh_updates_last_seen(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    issued = await tokens(client, world, "officer_a1", PHONE)
    then = await age(session, PHONE, timedelta(hours=3))

    response = await refresh(client, issued["refresh_token"], PHONE)

    assert response.status_code == 200, response.text
    device = await stored(session, PHONE)
    assert device.last_seen_at > then + timedelta(hours=2)
    assert device.app_version is None
    assert device.last_sync_at is None

    # A refresh may report the version of an app updated since the login.
    response = await refresh(client, response.json()["refresh_token"], PHONE, app_version="2.5.0")
    assert response.status_code == 200, response.text
    assert (await stored(session, PHONE)).app_version == "2.5.0"


@pytest.mark.parametrize(
    "app_version", ["x" * 33, "2.3.1\n", "2.3\t1", "\u200b"], ids=["long", "nl", "tab", "zwsp"]
)
async def test_bad_app_version_is_invalid_request(
    client: httpx.AsyncClient, world: World, session: AsyncSession, app_version: str
) -> None:
    response = await login(client, world, "officer_a1", PHONE, app_version=app_version)
    assert_oauth_error(response, "invalid_request")
    assert "app_version" in response.json()["error_description"]
    assert (await session.scalars(select(Device))).all() == []


async def test_app_version_of_32_printable_characters(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    version = "2.3.1 (build 4711) 华为版 " + "x" * 9
    assert len(version) == 32
    await tokens(client, world, "officer_a1", PHONE, app_version=version)
    assert (await stored(session, PHONE)).app_version == version


# --- touch_device: what the sync endpoints call ---------------------------------------------


async def test_touch_registers_and_throttles(session: AsyncSession, world: World) -> None:
    user_id = world.users["officer_a1"].id
    t0 = utcnow()

    device = await devices_service.touch_device(session, PHONE, user_id=user_id, now=t0)
    assert (device.first_seen_at, device.last_seen_at, device.last_sync_at) == (t0, t0, None)

    later = t0 + timedelta(seconds=30)
    device = await devices_service.touch_device(session, PHONE, user_id=user_id, now=later)
    assert device.last_seen_at == t0  # within the minute: not written

    device = await devices_service.touch_device(
        session, PHONE, user_id=user_id, synced=True, now=later
    )
    assert (device.last_seen_at, device.last_sync_at) == (later, later)  # first sync

    much_later = t0 + timedelta(minutes=5)
    device = await devices_service.touch_device(
        session, PHONE, user_id=user_id, synced=True, now=much_later
    )
    assert (device.last_seen_at, device.last_sync_at) == (much_later, much_later)
    assert (await stored(session, PHONE)).last_sync_at == much_later


async def test_touch_refuses_a_revoked_device(session: AsyncSession, world: World) -> None:
    user = world.users["officer_a1"]
    await add_device(session, user, PHONE, revoked=True)

    with pytest.raises(devices_service.DeviceRevoked) as caught:
        await devices_service.touch_device(session, PHONE, user_id=user.id, now=utcnow())

    body = caught.value.problem()
    assert (body["status"], body["code"], body["retryable"]) == (403, "device_revoked", False)


# --- who sees which devices -----------------------------------------------------------------


@pytest.fixture
async def phones(session: AsyncSession, world: World) -> dict[str, str]:
    """A phone for each user of the world, and a second one for officer_a1."""
    owners = {
        "officer_a1": "phone-a1",
        "officer_a2": "phone-a2",
        "secretary_a1": "phone-s1",
        "admin_a": "phone-admin-a",
        "admin_b": "phone-admin-b",
    }
    for who, device_id in owners.items():
        await add_device(session, world.users[who], device_id)
    await add_device(session, world.users["officer_a1"], "phone-a1-spare")
    await session.commit()  # releases the savepoint only: rolled back after the test
    return owners


async def test_each_caller_sees_only_their_own_or_their_county(
    client: httpx.AsyncClient, world: World, phones: dict[str, str]
) -> None:
    county_a = {"phone-a1", "phone-a1-spare", "phone-a2", "phone-s1", "phone-admin-a"}
    assert ids(await listed(client, world, "officer_a1")) == {"phone-a1", "phone-a1-spare"}
    assert ids(await listed(client, world, "officer_a2")) == {"phone-a2"}
    assert ids(await listed(client, world, "secretary_a1")) == {"phone-s1"}
    assert ids(await listed(client, world, "admin_a")) == county_a
    assert ids(await listed(client, world, "admin_b")) == {"phone-admin-b"}


async def test_list_by_user(
    client: httpx.AsyncClient, world: World, phones: dict[str, str]
) -> None:
    officer_a1, officer_a2 = world.users["officer_a1"].id, world.users["officer_a2"].id
    assert ids(await listed(client, world, "admin_a", user_id=str(officer_a1))) == {
        "phone-a1",
        "phone-a1-spare",
    }
    assert ids(await listed(client, world, "admin_b", user_id=str(officer_a1))) == set()
    # Others' devices stay invisible whatever the filter.
    assert ids(await listed(client, world, "officer_a1", user_id=str(officer_a2))) == set()

    response = await client.get(
        URL, headers=world.headers("admin_a"), params={"user_id": "not-a-uuid"}
    )
    problem(response, 422, "validation_failed", "query.user_id")


async def test_list_needs_a_token(client: httpx.AsyncClient) -> None:
    problem(await client.get(URL), 401, "not_authenticated")


async def test_list_pages_by_device_id(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    expected = [f"phone-{i:02d}" for i in range(7)]
    for device_id in reversed(expected):
        await add_device(session, world.users["officer_a2"], device_id)
    await session.commit()

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(URL, headers=world.headers("admin_a"), params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 3
        seen += [item["device_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3

    response = await client.get(URL, headers=world.headers("admin_a"), params={"cursor": "x"})
    problem(response, 422, "validation_failed", "query.cursor")
    response = await client.get(URL, headers=world.headers("admin_a"), params={"limit": 501})
    problem(response, 422, "validation_failed", "query.limit")


# --- revocation -----------------------------------------------------------------------------


async def test_revoking_a_lost_phone(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    lost = await tokens(client, world, "officer_a1", PHONE)
    rotated = (await refresh(client, lost["refresh_token"], PHONE)).json()
    spare = await tokens(client, world, "officer_a1", OTHER_PHONE)
    assert (await client.get(ME_URL, headers=bearer(rotated["access_token"]))).status_code == 200

    response = await client.post(f"{URL}/{PHONE}/revoke", headers=world.headers("admin_a"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device_id"] == PHONE
    assert body["revoked"] is True
    assert body["user"]["id"] == str(world.users["officer_a1"].id)
    revoked_at = datetime.fromisoformat(body["revoked_at"])
    device = await stored(session, PHONE)
    assert device.revoked_at == revoked_at
    assert device.revoked_by == world.users["admin_a"].id

    # Its refresh tokens die, its access tokens are refused…
    for refresh_token in (lost["refresh_token"], rotated["refresh_token"]):
        refused = await refresh(client, refresh_token, PHONE)
        assert_oauth_error(refused, "invalid_grant")
        assert refused.json()["error_description"] == "this device has been revoked"
    for access_token in (lost["access_token"], rotated["access_token"]):
        me = await client.get(ME_URL, headers=bearer(access_token))
        problem(me, 401, "not_authenticated")
        assert me.headers["www-authenticate"].startswith("Bearer ")
    families = (
        await session.scalars(
            select(TokenFamily)
            .where(TokenFamily.device_id == PHONE)
            .execution_options(populate_existing=True)
        )
    ).all()
    assert [f.revoked_reason for f in families] == ["device_revoked"]

    # …and nobody can log in on it again, whoever they are.
    for who in ("officer_a1", "officer_a2"):
        refused = await login(client, world, who, PHONE)
        assert_oauth_error(refused, "invalid_grant")
        assert refused.json()["error_description"] == "this device has been revoked"
    # A wrong password does not tell that the phone was revoked.
    wrong = await login(client, world, "officer_a1", PHONE, password="wrong")
    assert "revoked" not in wrong.json()["error_description"]
    assert (
        await session.scalar(
            select(TokenFamily.id).where(
                TokenFamily.device_id == PHONE, TokenFamily.revoked_at.is_(None)
            )
        )
        is None
    )

    # The user's other phone keeps working.
    assert (await client.get(ME_URL, headers=bearer(spare["access_token"]))).status_code == 200
    assert (await refresh(client, spare["refresh_token"], OTHER_PHONE)).status_code == 200
    assert (await tokens(client, world, "officer_a1", OTHER_PHONE))["access_token"]

    # The list shows it revoked.
    items = await listed(client, world, "admin_a", user_id=str(world.users["officer_a1"].id))
    assert {item["device_id"]: item["revoked"] for item in items} == {
        PHONE: True,
        OTHER_PHONE: False,
    }


async def test_revoking_twice_is_idempotent(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await add_device(session, world.users["officer_a1"], PHONE)
    url = f"{URL}/{PHONE}/revoke"

    first = await client.post(url, headers=world.headers("admin_a"))
    second = await client.post(url, headers=world.headers("admin_a"))

    assert first.status_code == second.status_code == 200, second.text
    assert first.json() == second.json()
    assert first.json()["revoked"] is True


async def test_a_refresh_on_a_revoked_device_ends_its_login(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    """A login that raced the revocation (its family survived) is refused at its refresh."""
    issued = await tokens(client, world, "officer_a1", PHONE)
    await session.execute(update(Device).where(Device.id == PHONE).values(revoked_at=utcnow()))

    refused = await refresh(client, issued["refresh_token"], PHONE)

    assert_oauth_error(refused, "invalid_grant")
    assert refused.json()["error_description"] == "this device has been revoked"
    problem(
        await client.get(ME_URL, headers=bearer(issued["access_token"])), 401, "not_authenticated"
    )


async def test_another_county_cannot_revoke_nor_learn_the_device_exists(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await add_device(session, world.users["officer_a1"], PHONE)
    await session.commit()
    headers = world.headers("admin_b")

    hidden = await client.post(f"{URL}/{PHONE}/revoke", headers=headers)
    missing = await client.post(f"{URL}/android-never-seen/revoke", headers=headers)

    hidden_body = problem(hidden, 404, "device_not_found")
    missing_body = problem(missing, 404, "device_not_found")
    assert set(hidden_body) == set(missing_body)
    assert hidden_body["title"] == missing_body["title"]
    assert (await stored(session, PHONE)).revoked_at is None


@pytest.mark.parametrize("who", ["officer_a1", "secretary_a1"])
async def test_only_a_county_admin_revokes(
    client: httpx.AsyncClient, world: World, session: AsyncSession, who: str
) -> None:
    await add_device(session, world.users[who], PHONE)
    await session.commit()

    response = await client.post(f"{URL}/{PHONE}/revoke", headers=world.headers(who))

    problem(response, 403, "forbidden")
    assert (await stored(session, PHONE)).revoked_at is None


async def test_revoke_refuses_a_malformed_device_id(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(f"{URL}/my%20phone/revoke", headers=world.headers("admin_a"))
    problem(response, 422, "validation_failed", "path.device_id")
