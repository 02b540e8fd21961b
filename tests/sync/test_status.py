"""GET /sync/status: the county's devices, their batches, conflicts, missing photos; ETag polls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.base import utcnow
from app.devices.models import Device
from app.photos.models import Photo
from app.sync.models import SyncBatch
from app.users.models import Role
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    PASSWORD,
    TOWN_A1,
    TOWN_A2,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_user,
    token_for,
)
from tests.records.bodies import parse
from tests.sync.feed_helpers import (
    API,
    STATUS_URL,
    batch_record,
    household_edit,
    post_batch,
    pull,
)

TOKEN_URL = f"{API}/auth/token"
SHA_X = "a" * 64
SHA_Y = "b" * 64

PHONE_A1 = "android-a1"  # officer_a1: three batches, a conflict, two photos missing
PHONE_SEC = "android-sec"  # secretary_a1: one batch, last synced two days ago
PHONE_A2 = "android-a2"  # officer_a2: one batch four days ago: behind
PHONE_NEW = "android-a1-new"  # officer_a1's second phone: logged in, never synced
PHONE_LOST = "android-a2-lost"  # officer_a2's revoked phone
PHONE_B1 = "android-b1"  # an officer of county B: never in county A's status

ZERO_COUNTS = {
    "created": 0,
    "updated": 0,
    "unchanged": 0,
    "stale": 0,
    "conflict": 0,
    "rejected": 0,
    "held": 0,
}


async def login(
    client: httpx.AsyncClient, world: World, who: str, device_id: str, app_version: str
) -> str:
    """A login on a phone (registers the device); returns the access token."""
    form = {
        "grant_type": "password",
        "username": world.users[who].username,
        "password": PASSWORD,
        "device_id": device_id,
        "app_version": app_version,
    }
    response = await client.post(TOKEN_URL, data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def set_device(session: AsyncSession, device_id: str, **values: Any) -> None:
    await session.execute(update(Device).where(col(Device.id) == device_id).values(**values))


async def set_received(session: AsyncSession, batch_id: str, at: datetime) -> None:
    await session.execute(
        update(SyncBatch).where(col(SyncBatch.id) == uuid.UUID(batch_id)).values(received_at=at)
    )


async def get_status(
    client: httpx.AsyncClient, world: World, who: str = "admin_a", **params: str
) -> dict[str, Any]:
    response = await client.get(STATUS_URL, headers=world.headers(who), params=params)
    assert response.status_code == 200, response.text
    assert response.headers["etag"].startswith('"')
    return dict(response.json())


def by_device(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["device_id"]: d for d in status["devices"]}


def by_village(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["code"]: v for v in status["villages"]}


@dataclass
class County:
    """What `build_county` did, for the expectations."""

    now: datetime
    a2_synced_at: datetime
    sec_synced_at: datetime
    conflict_id: str
    last_batch_a1: str
    token_a1: str
    token_new: str


async def build_county(client: httpx.AsyncClient, session: AsyncSession, world: World) -> County:
    now = utcnow()
    a1, a2, b1 = (world.households[k].id for k in ("a1", "a2", "b1"))

    # The first secretary edits the household's phone offline: applied, version 2.
    sec_token = await token_for(session, world.users["secretary_a1"], device_id=PHONE_SEC)
    sec = await post_batch(
        client, sec_token, PHONE_SEC, [household_edit(a1, 1, phone="13900000001")]
    )
    assert sec["counts"]["updated"] == 1, sec

    # officer_a1's phone: a batch eight days ago (outside every window, one rejected record),
    # two visits two days ago, then today a visit with two photos, a record for a household of
    # another county (rejected) and a stale edit of the phone number (a conflict).
    token_a1 = await login(client, world, "officer_a1", PHONE_A1, "2.3.0")
    old = await post_batch(
        client,
        token_a1,
        PHONE_A1,
        [batch_record("visit", a1), batch_record("visit", b1)],
    )
    assert old["counts"]["rejected"] == 1, old
    await set_received(session, old["batch_id"], now - timedelta(days=8))
    earlier = await post_batch(
        client, token_a1, PHONE_A1, [batch_record("visit", a1), batch_record("measure", a1)]
    )
    assert earlier["counts"]["created"] == 2, earlier
    await set_received(session, earlier["batch_id"], now - timedelta(days=2))
    photos = [{"sha256": SHA_X, "tag": "sign_in"}, {"sha256": SHA_Y, "tag": "evidence"}]
    today = await post_batch(
        client,
        token_a1,
        PHONE_A1,
        [
            batch_record("visit", a1, photos=photos),
            batch_record("visit", b1),
            household_edit(a1, 1, phone="13900000002"),
        ],
        app_version="2.4.0",
    )
    assert [r["status"] for r in today["results"]] == ["created", "rejected", "conflict"], today
    assert sorted(today["missing_photos"]) == [SHA_X, SHA_Y]

    # officer_a2's phone synced four days ago; a lost phone of theirs was revoked.
    token_a2 = await token_for(session, world.users["officer_a2"], device_id=PHONE_A2)
    a2_batch = await post_batch(client, token_a2, PHONE_A2, [batch_record("visit", a2)])
    a2_synced_at = now - timedelta(days=4)
    await set_received(session, a2_batch["batch_id"], a2_synced_at)
    await set_device(session, PHONE_A2, last_sync_at=a2_synced_at, last_seen_at=a2_synced_at)
    session.add(
        Device(
            id=PHONE_LOST,
            user_id=world.users["officer_a2"].id,
            first_seen_at=now - timedelta(days=30),
            last_seen_at=now - timedelta(days=20),
            last_sync_at=now - timedelta(days=20),
            revoked_at=now - timedelta(days=19),
            revoked_by=world.users["admin_a"].id,
        )
    )
    sec_synced_at = now - timedelta(days=2)
    await set_device(session, PHONE_SEC, last_sync_at=sec_synced_at)
    token_new = await login(client, world, "officer_a1", PHONE_NEW, "2.4.0")

    # County B: an officer and a phone that county A never sees.
    name = f"officer_b1-{uuid.uuid4().hex[:6]}"
    officer_b = await make_user(session, username=name, role=Role.officer, regions=[VILLAGE_B1])
    token_b = await token_for(session, officer_b, device_id=PHONE_B1)
    await post_batch(client, token_b, PHONE_B1, [batch_record("visit", b1)])
    await session.flush()

    return County(
        now=now,
        a2_synced_at=a2_synced_at,
        sec_synced_at=sec_synced_at,
        conflict_id=today["results"][2]["conflict_id"],
        last_batch_a1=today["batch_id"],
        token_a1=token_a1,
        token_new=token_new,
    )


# --- the county's view ----------------------------------------------------------------------


async def test_status_shows_each_device_of_the_county(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    county = await build_county(client, session, world)

    status = await get_status(client, world)

    assert status["region"] == COUNTY_A
    assert status["behind_after_days"] == 3
    assert abs(parse(status["generated_at"]) - utcnow()) < timedelta(minutes=1)
    devices = by_device(status)
    assert set(devices) == {PHONE_A1, PHONE_SEC, PHONE_A2, PHONE_NEW, PHONE_LOST}
    assert [d["device_id"] for d in status["devices"]] == sorted(devices)

    a1 = devices[PHONE_A1]
    assert a1["user"]["id"] == str(world.users["officer_a1"].id)
    assert a1["user"]["username"] == world.users["officer_a1"].username
    assert a1["user"]["role"] == "officer"
    assert a1["villages"] == [VILLAGE_A1]
    assert a1["app_version"] == "2.4.0"
    assert a1["revoked"] is False
    assert a1["last_batch"] == {
        "batch_id": county.last_batch_a1,
        "received_at": a1["last_batch"]["received_at"],
        "counts": {**ZERO_COUNTS, "created": 1, "conflict": 1, "rejected": 1},
    }
    assert abs(parse(a1["last_batch"]["received_at"]) - county.now) < timedelta(minutes=1)
    assert (a1["records_24h"], a1["records_7d"], a1["rejected_7d"]) == (3, 5, 1)
    assert a1["open_conflicts"] == 1
    assert a1["photos_missing"] == 2
    assert a1["days_since_last_sync"] == 0
    assert a1["behind"] is False
    assert parse(a1["last_sync_at"]) <= parse(status["generated_at"])

    sec = devices[PHONE_SEC]
    assert sec["user"]["role"] == "first_secretary"
    assert sec["last_batch"]["counts"] == {**ZERO_COUNTS, "updated": 1}
    assert (sec["records_24h"], sec["records_7d"], sec["rejected_7d"]) == (1, 1, 0)
    assert (sec["open_conflicts"], sec["photos_missing"]) == (0, 0)
    assert parse(sec["last_sync_at"]) == county.sec_synced_at
    assert sec["days_since_last_sync"] == 2
    assert sec["behind"] is False

    a2 = devices[PHONE_A2]
    assert a2["villages"] == [VILLAGE_A2]
    assert (a2["records_24h"], a2["records_7d"], a2["rejected_7d"]) == (0, 1, 0)
    assert parse(a2["last_sync_at"]) == county.a2_synced_at
    assert a2["days_since_last_sync"] == 4
    assert a2["behind"] is True

    new = devices[PHONE_NEW]
    assert new["user"]["id"] == str(world.users["officer_a1"].id)
    assert new["app_version"] == "2.4.0"
    assert new["last_sync_at"] is None and new["days_since_last_sync"] is None
    assert new["last_batch"] is None
    assert (new["records_24h"], new["records_7d"], new["rejected_7d"]) == (0, 0, 0)
    assert (new["open_conflicts"], new["photos_missing"]) == (0, 0)
    # Logged in, never synced: shown apart, not behind.
    assert (new["never_synced"], new["behind"]) == (True, False)
    assert [d["never_synced"] for d in (a1, sec, a2)] == [False] * 3

    lost = devices[PHONE_LOST]
    assert lost["revoked"] is True
    assert lost["behind"] is False  # a revoked phone is not expected to sync
    assert lost["days_since_last_sync"] == 20
    assert lost["never_synced"] is False

    assert status["summary"] == {
        "devices": 3,  # the revoked phone and the login never synced aside
        "devices_behind": 1,
        "devices_never_synced": 1,
        "records_24h": 4,
        "records_7d": 7,
        "rejected_7d": 1,
        "open_conflicts": 1,
        "photos_missing": 2,
    }

    villages = by_village(status)
    assert list(villages) == [VILLAGE_A1, VILLAGE_A2, VILLAGE_A3]
    assert villages[VILLAGE_A1] == {
        "code": VILLAGE_A1,
        "name": "王庄村",
        "devices": 2,
        "devices_behind": 0,
        "devices_never_synced": 1,
        "last_sync_at": a1["last_sync_at"],
        "records_7d": 6,
        "open_conflicts": 1,
        "photos_missing": 2,
    }
    assert villages[VILLAGE_A2] == {
        "code": VILLAGE_A2,
        "name": "后屯村",
        "devices": 1,
        "devices_behind": 1,
        "devices_never_synced": 0,
        "last_sync_at": a2["last_sync_at"],
        "records_7d": 1,
        "open_conflicts": 0,
        "photos_missing": 0,
    }
    assert villages[VILLAGE_A3] == {
        "code": VILLAGE_A3,
        "name": "前营村",
        "devices": 0,
        "devices_behind": 0,
        "devices_never_synced": 0,
        "last_sync_at": None,
        "records_7d": 0,
        "open_conflicts": 0,
        "photos_missing": 0,
    }
    counted = ("devices", "devices_behind", "devices_never_synced")
    for name in (*counted, "open_conflicts", "photos_missing"):
        assert status["summary"][name] == sum(v[name] for v in status["villages"]), name


async def test_photos_conflicts_and_replays_move_the_counts(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    county = await build_county(client, session, world)

    session.add(Photo(sha256=SHA_X, size_bytes=123_456, content_type="image/jpeg"))
    await session.flush()
    status = await get_status(client, world)
    assert by_device(status)[PHONE_A1]["photos_missing"] == 1
    assert by_village(status)[VILLAGE_A1]["photos_missing"] == 1
    assert status["summary"]["photos_missing"] == 1

    response = await client.post(
        f"{API}/sync/conflicts/{county.conflict_id}/resolve",
        json={"choice": "client"},
        headers=world.headers("admin_a"),
    )
    assert response.status_code == 200, response.text
    status = await get_status(client, world)
    assert by_device(status)[PHONE_A1]["open_conflicts"] == 0
    assert by_village(status)[VILLAGE_A1]["open_conflicts"] == 0
    assert status["summary"]["open_conflicts"] == 0

    # A retried batch is the same batch: counted once.
    before = by_device(status)[PHONE_A1]
    batch_id = uuid.uuid4()
    records = [batch_record("visit", world.households["a1"].id) for _ in range(2)]
    for _ in range(2):
        await post_batch(client, county.token_a1, PHONE_A1, records, batch_id=batch_id)
    after = by_device(await get_status(client, world))[PHONE_A1]
    assert after["records_24h"] == before["records_24h"] + 2
    assert after["records_7d"] == before["records_7d"] + 2
    assert after["last_batch"]["batch_id"] == str(batch_id)
    assert after["last_batch"]["counts"] == {**ZERO_COUNTS, "created": 2}


async def test_a_pull_of_the_feed_counts_as_a_sync(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await build_county(client, session, world)
    assert by_device(await get_status(client, world))[PHONE_NEW]["never_synced"] is True

    token = await login(client, world, "officer_a1", PHONE_NEW, "2.4.0")
    await pull(client, {"Authorization": f"Bearer {token}"})

    new = by_device(await get_status(client, world))[PHONE_NEW]
    assert (new["never_synced"], new["behind"]) == (False, False)
    assert new["days_since_last_sync"] == 0
    assert new["last_batch"] is None


@pytest.mark.parametrize(
    ("region", "devices", "villages"),
    [
        (VILLAGE_A1, {PHONE_A1, PHONE_SEC, PHONE_NEW}, [VILLAGE_A1]),
        (VILLAGE_A2, {PHONE_A2, PHONE_LOST}, [VILLAGE_A2]),
        (TOWN_A1, {PHONE_A1, PHONE_SEC, PHONE_NEW, PHONE_A2, PHONE_LOST}, [VILLAGE_A1, VILLAGE_A2]),
        (TOWN_A2, set(), [VILLAGE_A3]),
    ],
)
async def test_region_narrows_the_status(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    region: str,
    devices: set[str],
    villages: list[str],
) -> None:
    await build_county(client, session, world)
    status = await get_status(client, world, region=region)
    assert status["region"] == region
    assert set(by_device(status)) == devices
    assert [v["code"] for v in status["villages"]] == villages
    live = [d for d in status["devices"] if not d["revoked"]]
    assert status["summary"]["devices"] == sum(not d["never_synced"] for d in live)
    assert status["summary"]["devices_behind"] == sum(d["behind"] for d in live)
    assert status["summary"]["devices_never_synced"] == sum(d["never_synced"] for d in live)
    for name in ("records_24h", "records_7d", "rejected_7d"):
        assert status["summary"][name] == sum(d[name] for d in status["devices"]), name
    for name in ("open_conflicts", "photos_missing"):
        assert status["summary"][name] == sum(v[name] for v in status["villages"]), name


async def test_region_narrowed_to_the_village_counts_only_its_own(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await build_county(client, session, world)
    status = await get_status(client, world, region=VILLAGE_A1)
    assert status["summary"] == {
        "devices": 2,
        "devices_behind": 0,
        "devices_never_synced": 1,
        "records_24h": 4,
        "records_7d": 6,
        "rejected_7d": 1,
        "open_conflicts": 1,
        "photos_missing": 2,
    }


async def test_county_b_sees_only_its_own_devices(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await build_county(client, session, world)
    status = await get_status(client, world, "admin_b")
    assert status["region"] == "371523000000"
    assert set(by_device(status)) == {PHONE_B1}
    assert [v["code"] for v in status["villages"]] == [VILLAGE_B1]
    assert status["summary"]["devices"] == 1
    assert status["summary"]["open_conflicts"] == 0


@pytest.mark.parametrize("region", [VILLAGE_B1, "371523000000", "110105000000"])
async def test_a_region_outside_the_county_is_not_found(
    client: httpx.AsyncClient, world: World, region: str
) -> None:
    response = await client.get(
        STATUS_URL, params={"region": region}, headers=world.headers("admin_a")
    )
    problem(response, 404, "not_found")


@pytest.mark.parametrize("region", ["371522", "3715221012011", "37152210120X", "371522101201-"])
async def test_a_malformed_region_is_a_client_error(
    client: httpx.AsyncClient, world: World, region: str
) -> None:
    response = await client.get(
        STATUS_URL, params={"region": region}, headers=world.headers("admin_a")
    )
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("who", ["officer_a1", "secretary_a1"])
async def test_only_the_county_admin_sees_the_status(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    for params in ({}, {"region": VILLAGE_A1}):
        response = await client.get(STATUS_URL, params=params, headers=world.headers(who))
        problem(response, 403, "forbidden")
    problem(await client.get(STATUS_URL), 401, "not_authenticated")


# --- polling with If-None-Match -------------------------------------------------------------


async def poll(client: httpx.AsyncClient, world: World, etag: str, **params: str) -> httpx.Response:
    return await client.get(
        STATUS_URL, params=params, headers={**world.headers("admin_a"), "If-None-Match": etag}
    )


async def assert_not_modified(
    client: httpx.AsyncClient, world: World, etag: str, *, sent: str | None = None
) -> None:
    """A poll with `sent` (default: the ETag itself) gets 304 with the ETag and no body."""
    response = await poll(client, world, sent or etag)
    assert response.status_code == 304, response.text
    assert response.headers["etag"] == etag
    assert response.content == b""


async def assert_modified(client: httpx.AsyncClient, world: World, etag: str, **params: str) -> str:
    """A poll with the old ETag gets the document and a new ETag; returns it."""
    response = await poll(client, world, etag, **params)
    assert response.status_code == 200, response.text
    assert response.json()["devices"] is not None
    new = response.headers["etag"]
    assert new != etag
    return str(new)


async def test_etag_answers_304_until_something_changes(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    county = await build_county(client, session, world)
    first = await client.get(STATUS_URL, headers=world.headers("admin_a"))
    assert first.status_code == 200
    etag = first.headers["etag"]

    await assert_not_modified(client, world, etag)
    await assert_not_modified(client, world, etag, sent=f'"something-else", {etag}')
    other = await poll(client, world, '"something-else"')
    assert other.status_code == 200 and other.headers["etag"] == etag
    assert other.json()["summary"] == first.json()["summary"]
    # Another region is another document.
    assert (await poll(client, world, etag, region=VILLAGE_A1)).status_code == 200

    # A new batch.
    await post_batch(
        client,
        county.token_a1,
        PHONE_A1,
        [batch_record("visit", world.households["a1"].id)],
    )
    etag = await assert_modified(client, world, etag)
    await assert_not_modified(client, world, etag)

    # A conflict resolved (the server's values kept: the household does not change).
    response = await client.post(
        f"{API}/sync/conflicts/{county.conflict_id}/resolve",
        json={"choice": "server"},
        headers=world.headers("admin_a"),
    )
    assert response.status_code == 200, response.text
    etag = await assert_modified(client, world, etag)
    await assert_not_modified(client, world, etag)

    # A photo arrives.
    session.add(Photo(sha256=SHA_Y, size_bytes=99_000, content_type="image/jpeg"))
    await session.flush()
    etag = await assert_modified(client, world, etag)
    await assert_not_modified(client, world, etag)

    # A phone is revoked.
    response = await client.post(
        f"{API}/devices/{PHONE_NEW}/revoke", headers=world.headers("admin_a")
    )
    assert response.status_code == 200, response.text
    etag = await assert_modified(client, world, etag)
    await assert_not_modified(client, world, etag)


async def test_etag_of_an_empty_county_is_stable(client: httpx.AsyncClient, world: World) -> None:
    first = await client.get(STATUS_URL, headers=world.headers("admin_a"))
    assert first.status_code == 200
    body = first.json()
    assert body["devices"] == [] and body["summary"]["devices"] == 0
    assert [v["code"] for v in body["villages"]] == [VILLAGE_A1, VILLAGE_A2, VILLAGE_A3]
    await assert_not_modified(client, world, first.headers["etag"])
    assert body["region"] == COUNTY_A
