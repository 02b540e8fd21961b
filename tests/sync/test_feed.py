"""GET /sync/changes: first download, exactly-once delivery, moves, reassignment, 410, masking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.base import utcnow
from app.core.config import get_settings
from app.sync.models import Change
from app.sync.retention import prune_deletes
from app.users.models import User, UserRegion
from tests.assertions import problem
from tests.builders import (
    ID_HEAD_A1,
    PHONE_A1,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_household,
    make_id_number,
)
from tests.sync.feed_helpers import (
    CHANGES_URL,
    RECORD_MODELS,
    Key,
    Replica,
    assert_replica_matches,
    deletes,
    duplicates,
    move_household,
    patch_household,
    pull,
    served,
    stored_objects,
    upserts,
    write_record,
)

# Who may write records in which village (author, first secretary, county admin).
WRITERS = {
    VILLAGE_A1: ("officer_a1", "secretary_a1", "admin_a"),
    VILLAGE_A2: ("officer_a2", "admin_a"),
    VILLAGE_B1: ("admin_b",),
}
RECORD_TYPES = tuple(RECORD_MODELS)


@dataclass
class Village:
    """What `populate` put in one village: its households and records, by key."""

    households: list[uuid.UUID] = field(default_factory=list)
    records: dict[Key, uuid.UUID] = field(default_factory=dict)  # key → household id

    def keys(self) -> set[Key]:
        return {("household", str(h)) for h in self.households} | set(self.records)


async def populate(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    *,
    extra_households: int = 1,
    villages: tuple[str, ...] = (VILLAGE_A1, VILLAGE_A2, VILLAGE_B1),
) -> dict[str, Village]:
    """Households with members in each village, and a record of each type by each writer."""
    worlds_own = {VILLAGE_A1: "a1", VILLAGE_A2: "a2", VILLAGE_B1: "b1"}
    out: dict[str, Village] = {}
    seq = 500
    for village in villages:
        found = Village(households=[world.households[worlds_own[village]].id])
        for n in range(extra_households):
            seq += 1
            area = village[:6]
            household = await make_household(
                session,
                village=village,
                head_name=f"户主{n}",
                phone=f"1390000{seq:04d}",
                members=[
                    {
                        "name": f"户主{n}",
                        "id_number": make_id_number(seq, "19700101", area),
                        "relation": "head",
                    },
                    {"name": f"子女{n}", "id_number": None, "relation": "child"},
                ],
            )
            found.households.append(household.id)
        for i, household_id in enumerate(found.households):
            for j, record_type in enumerate(RECORD_TYPES):
                writers = WRITERS[village]
                who = writers[(i + j) % len(writers)]
                record_id = await write_record(client, world, record_type, household_id, who=who)
                found.records[(record_type, str(record_id))] = household_id
        out[village] = found
    return out


async def set_regions(session: AsyncSession, user: User, regions: list[str]) -> None:
    """Reassign a user (as the county would): the next request's principal sees the change."""
    await session.execute(delete(UserRegion).where(col(UserRegion.user_id) == user.id))
    session.add_all(UserRegion(user_id=user.id, region_code=code) for code in regions)
    await session.flush()


async def record_of(session: AsyncSession, object_key: Key) -> tuple[uuid.UUID, int]:
    """(household id, revision) of a stored record."""
    model = RECORD_MODELS[object_key[0]]
    row = (
        await session.execute(
            select(col(model.household_id), col(model.revision)).where(
                col(model.id) == uuid.UUID(object_key[1])
            )
        )
    ).one()
    return row[0], row[1]


async def bump(
    client: httpx.AsyncClient, session: AsyncSession, world: World, object_key: Key, who: str
) -> int:
    """Write the next revision of a record, or PATCH a household; returns the new version."""
    object_type, object_id = object_key
    if object_type == "household":
        return await patch_household(
            client, world, object_id, who=who, group_name=f"{uuid.uuid4().hex[:6]}组"
        )
    household_id, revision = await record_of(session, object_key)
    by_type: dict[str, dict[str, Any]] = {
        "visit": {"findings": f"第{revision + 1}次修改"},
        "income_snapshot": {"household_size": revision + 3},
        "measure": {"title": f"危房改造 第{revision + 1}版"},
    }
    changes = by_type[object_type]
    await write_record(
        client,
        world,
        object_type,
        household_id,
        who=who,
        record_id=uuid.UUID(object_id),
        revision=revision + 1,
        **changes,
    )
    return revision + 1


def assert_versions_increase(entries: list[dict[str, Any]]) -> None:
    """Each object's upserts arrive with strictly increasing versions."""
    last: dict[Key, int] = {}
    for entry in entries:
        if entry["op"] != "upsert":
            continue
        object_key = (entry["type"], entry["id"])
        assert entry["version"] > last.get(object_key, 0), entry
        last[object_key] = entry["version"]


# --- first download and the pulls after it -------------------------------------------------


@pytest.mark.parametrize("limit", [2, 7, 50])
async def test_first_download_delivers_each_object_of_the_villages_once(
    client: httpx.AsyncClient, session: AsyncSession, world: World, limit: int
) -> None:
    data = await populate(client, session, world, extra_households=2)
    headers = world.headers("officer_a1")
    replica = Replica()

    entries = await replica.sync(client, headers, limit=limit)

    own = data[VILLAGE_A1].keys()
    assert len(own) == 12  # 3 households, 9 records by three different writers
    assert upserts(entries) == await stored_objects(session, [VILLAGE_A1])
    assert {(e["type"], e["id"]) for e in entries} == own
    assert not any(e["op"] == "delete" for e in entries)
    elsewhere = data[VILLAGE_A2].keys() | data[VILLAGE_B1].keys()
    assert not elsewhere & {(e["type"], e["id"]) for e in entries}
    assert {e["household_id"] for e in entries} == {str(h) for h in data[VILLAGE_A1].households}
    # Full pages while has_more: no more pages than the entries need (plus a last empty one).
    assert replica.pages <= math.ceil(len(own) / limit) + 1
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1])

    # Caught up: an empty page, and its cursor goes on working.
    again = await pull(client, headers, cursor=replica.cursor, limit=limit)
    assert again["changes"] == []
    assert again["has_more"] is False
    assert (await pull(client, headers, cursor=again["next_cursor"]))["changes"] == []


async def test_new_writes_arrive_once_on_the_next_pull(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    data = await populate(client, session, world)
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers, limit=5)

    a1 = world.households["a1"].id
    new_visit = await write_record(client, world, "visit", a1, who="secretary_a1")
    measure = next(k for k in data[VILLAGE_A1].records if k[0] == "measure")
    await bump(client, session, world, measure, "admin_a")
    # Edited twice between pulls: one entry, the latest version.
    snapshot = next(k for k in data[VILLAGE_A1].records if k[0] == "income_snapshot")
    await bump(client, session, world, snapshot, "admin_a")
    snapshot_version = await bump(client, session, world, snapshot, "secretary_a1")
    await patch_household(client, world, a1, who="officer_a1", group_name="一组")
    household_version = await patch_household(client, world, a1, who="admin_a", group_name="二组")
    # Elsewhere: not for this phone.
    await write_record(client, world, "visit", world.households["a2"].id, who="officer_a2")
    await bump(client, session, world, ("household", str(world.households["b1"].id)), "admin_b")

    entries = await replica.sync(client, headers, limit=2)

    assert upserts(entries) == {
        ("visit", str(new_visit)): 1,
        measure: 2,
        snapshot: snapshot_version,
        ("household", str(a1)): household_version,
    }
    assert snapshot_version == 3
    assert len(entries) == 4
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1])
    assert (await pull(client, headers, cursor=replica.cursor))["changes"] == []


async def test_member_changes_deliver_the_household_again(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers)
    a1 = world.households["a1"]
    before = replica.objects[("household", str(a1.id))]["data"]

    version = before["version"]
    response = await client.post(
        f"/api/v1/households/{a1.id}/members",
        json={"name": "张小红", "relation": "child", "id_number": make_id_number(77, "20100101")},
        headers={**world.headers("officer_a1"), "If-Match": f'"v{version}"'},
    )
    assert response.status_code == 201, response.text

    entries = await replica.sync(client, headers)
    assert [(e["type"], e["op"], e["version"]) for e in entries] == [
        ("household", "upsert", version + 1)
    ]
    assert len(entries[0]["data"]["members"]) == len(before["members"]) + 1
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1])


# --- writes while a phone pages --------------------------------------------------------------


async def test_writes_between_pages_are_delivered_once_and_the_replica_ends_equal(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await populate(client, session, world, extra_households=3, villages=(VILLAGE_A1, VILLAGE_A2))
    headers = world.headers("officer_a1")
    replica = Replica()
    tally = {"delivered": 0, "undelivered": 0, "created": 0}

    async def write_something(step: int) -> None:
        received = {(e["type"], e["id"]) for e in replica.received}
        stored = sorted(await stored_objects(session, [VILLAGE_A1]))
        held = [k for k in stored if k in received]
        waiting = [k for k in stored if k not in received]
        action = (1, 0, 2, 1, 3, 0)[step % 6]
        if action == 0 and held:
            # Already delivered: it must come again, at its new version.
            await bump(client, session, world, held[step % len(held)], "admin_a")
            tally["delivered"] += 1
        elif action == 1 and waiting:
            # Not delivered yet: it must come once, at its latest version only.
            await bump(client, session, world, waiting[-1], "secretary_a1")
            tally["undelivered"] += 1
        elif action == 2:
            await write_record(client, world, "visit", world.households["a1"].id)
            tally["created"] += 1
        else:
            # A colleague in another village: never for this phone.
            await write_record(
                client, world, "measure", world.households["a2"].id, who="officer_a2"
            )

    body = await replica.page(client, headers, limit=2)
    step = 0
    while body["has_more"]:
        await write_something(step)
        step += 1
        body = await replica.page(client, headers, limit=2)
        assert step < 100, "the feed does not end"
    await write_something(0)  # and after the last page
    await write_something(1)
    await replica.sync(client, headers, limit=2)

    assert min(tally.values()) >= 2, tally
    assert duplicates(replica.received) == []
    assert_versions_increase(replica.received)
    assert not any(e["op"] == "delete" for e in replica.received)
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1])


# --- a household moves --------------------------------------------------------------------------


async def test_moved_household_is_deleted_from_the_old_village_and_back_again(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    data = await populate(client, session, world, villages=(VILLAGE_A1, VILLAGE_A2))
    a1 = world.households["a1"].id
    moving = {("household", str(a1))} | {k for k, h in data[VILLAGE_A1].records.items() if h == a1}
    assert len(moving) == 4
    old, new = world.headers("officer_a1"), world.headers("officer_a2")
    phone_old, phone_new = Replica(), Replica()
    await phone_old.sync(client, old, limit=3)
    await phone_new.sync(client, new, limit=3)
    assert moving <= set(phone_old.objects)

    version = await move_household(client, world, a1, VILLAGE_A2)

    gone = await phone_old.sync(client, old, limit=3)
    assert deletes(gone) == moving
    assert [e for e in gone if e["op"] != "delete"] == []
    assert all(e["household_id"] == str(a1) for e in gone)
    await assert_replica_matches(client, session, phone_old, old, [VILLAGE_A1])
    assert phone_old.objects  # the village's other household stays

    came = await phone_new.sync(client, new, limit=3)
    assert set(upserts(came)) == moving
    assert deletes(came) == set()
    assert upserts(came)[("household", str(a1))] == version
    assert phone_new.objects[("household", str(a1))]["data"]["village_code"] == VILLAGE_A2
    await assert_replica_matches(client, session, phone_new, new, [VILLAGE_A2])

    # Written while it lived in A2, then it moves back: the record goes with it.
    written_there = await write_record(client, world, "visit", a1, who="officer_a2")
    await phone_new.sync(client, new)
    moving.add(("visit", str(written_there)))
    await move_household(client, world, a1, VILLAGE_A1)

    back = await phone_old.sync(client, old, limit=3)
    assert set(upserts(back)) == moving
    assert deletes(back) == set()
    await assert_replica_matches(client, session, phone_old, old, [VILLAGE_A1])
    left = await phone_new.sync(client, new, limit=3)
    assert deletes(left) == moving
    assert [e for e in left if e["op"] != "delete"] == []
    await assert_replica_matches(client, session, phone_new, new, [VILLAGE_A2])


async def test_first_download_after_a_move_ends_without_the_moved_household(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await populate(client, session, world, villages=(VILLAGE_A1,))
    await move_household(client, world, world.households["a1"].id, VILLAGE_A3)
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers, limit=2)
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1])
    assert ("household", str(world.households["a1"].id)) not in replica.objects


# --- reassignment ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [2, 100])
async def test_reassignment_deletes_the_lost_village_then_delivers_the_gained_one(
    client: httpx.AsyncClient, session: AsyncSession, world: World, limit: int
) -> None:
    data = await populate(client, session, world, villages=(VILLAGE_A1, VILLAGE_A2))
    officer = world.users["officer_a1"]
    headers = world.headers("officer_a1")  # the same token before and after
    replica = Replica()
    await replica.sync(client, headers, limit=limit)
    assert set(replica.objects) == data[VILLAGE_A1].keys()

    await set_regions(session, officer, [VILLAGE_A2])
    entries = await replica.sync(client, headers, limit=limit)

    ops = [e["op"] for e in entries]
    assert ops == sorted(ops)  # every delete before the first upsert
    assert deletes(entries) == data[VILLAGE_A1].keys()
    assert set(upserts(entries)) == data[VILLAGE_A2].keys()
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A2])
    if limit == 2:
        assert replica.pages >= 2 + len(entries) // 2

    # And then on as before: A2's writes come once, A1's no more.
    new_visit = await write_record(client, world, "visit", world.households["a2"].id)
    await write_record(client, world, "visit", world.households["a1"].id, who="secretary_a1")
    later = await replica.sync(client, headers, limit=limit)
    assert [(e["type"], e["id"], e["op"]) for e in later] == [("visit", str(new_visit), "upsert")]
    assert duplicates(replica.received) == []
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A2])


async def test_losing_every_village_deletes_everything_held(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    data = await populate(client, session, world, villages=(VILLAGE_A1,))
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers, limit=3)

    await set_regions(session, world.users["officer_a1"], [])
    entries = await replica.sync(client, headers, limit=3)

    assert deletes(entries) == data[VILLAGE_A1].keys()
    assert len(entries) == len(data[VILLAGE_A1].keys())
    assert replica.objects == {}
    await write_record(client, world, "visit", world.households["a1"].id, who="secretary_a1")
    assert (await pull(client, headers, cursor=replica.cursor))["changes"] == []


async def test_gaining_a_village_while_writes_go_on_in_both(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    data = await populate(client, session, world, villages=(VILLAGE_A1, VILLAGE_A2))
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers, limit=3)

    await set_regions(session, world.users["officer_a1"], [VILLAGE_A1, VILLAGE_A2])
    kept = sorted(data[VILLAGE_A1].records)
    gained = sorted(data[VILLAGE_A2].records)
    body = await replica.page(client, headers, limit=2)
    step = 0
    while body["has_more"]:
        # A record already held in the kept village, or one of the gained village (delivered or
        # not yet): each must come once more, at its new version only.
        if step % 2:
            await bump(client, session, world, gained[step % len(gained)], "admin_a")
        else:
            await bump(client, session, world, kept[step % len(kept)], "admin_a")
        step += 1
        body = await replica.page(client, headers, limit=2)
        assert step < 50, "the feed does not end"

    assert step >= 3
    assert not any(e["op"] == "delete" for e in replica.received)
    assert duplicates(replica.received) == []
    assert_versions_increase(replica.received)
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1, VILLAGE_A2])


async def test_losing_a_village_keeps_a_household_that_moved_from_it_to_a_kept_one(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    officer = world.users["officer_a1"]
    await set_regions(session, officer, [VILLAGE_A1, VILLAGE_A2])
    a1 = world.households["a1"].id
    await write_record(client, world, "visit", a1)
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers)
    await move_household(client, world, a1, VILLAGE_A2)
    await replica.sync(client, headers)
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1, VILLAGE_A2])

    await set_regions(session, officer, [VILLAGE_A2])
    await replica.sync(client, headers)

    assert ("household", str(a1)) in replica.objects
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A2])


async def test_gaining_a_village_keeps_a_household_that_moved_from_it_to_a_held_one(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a2 = world.households["a2"].id
    await write_record(client, world, "visit", a2, who="officer_a2")
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers)
    await move_household(client, world, a2, VILLAGE_A1)
    await replica.sync(client, headers)
    assert ("household", str(a2)) in replica.objects

    await set_regions(session, world.users["officer_a1"], [VILLAGE_A1, VILLAGE_A2])
    await replica.sync(client, headers)

    assert ("household", str(a2)) in replica.objects
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A1, VILLAGE_A2])


async def test_villages_changing_again_during_the_catch_up_is_gone(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await populate(client, session, world, villages=(VILLAGE_A1, VILLAGE_A2))
    officer = world.users["officer_a1"]
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers)
    await set_regions(session, officer, [VILLAGE_A2])
    body = await replica.page(client, headers, limit=2)
    assert body["has_more"] is True

    await set_regions(session, officer, [VILLAGE_A3])
    gone = await client.get(CHANGES_URL, params={"cursor": replica.cursor}, headers=headers)
    assert_gone(gone)


# --- cursors the server cannot continue from -------------------------------------------------


def assert_gone(response: httpx.Response) -> dict[str, Any]:
    body = problem(response, 410, "cursor_gone")
    assert body["retryable"] is False
    assert "start a fresh download" in body["detail"]
    return dict(body)


def unpack(cursor: str) -> tuple[bytes, bytes]:
    blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    return blob[:16], blob[16:]


def pack(mac: bytes, raw: bytes) -> str:
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


async def test_a_cursor_not_issued_by_this_server_is_gone(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.headers("officer_a1")
    cursor = (await pull(client, headers, limit=1))["next_cursor"]
    mac, raw = unpack(cursor)
    assert pack(mac, raw) == cursor
    state = json.loads(raw)
    widened = json.dumps({**state, "r": [VILLAGE_A1, VILLAGE_B1]}).encode()
    flipped_payload = raw[:-3] + bytes([raw[-3] ^ 0x01]) + raw[-2:]
    flipped_mac = bytes([mac[0] ^ 0x80]) + mac[1:]
    other_key = hmac.new(b"another server", raw, hashlib.sha256).digest()[:16]
    for bad in [
        "garbage",
        "!!!not base64!!!",
        "",
        pack(mac, flipped_payload),
        pack(flipped_mac, raw),
        pack(mac, widened),
        pack(other_key, raw),
        cursor[:-1],
    ]:
        response = await client.get(CHANGES_URL, params={"cursor": bad}, headers=headers)
        assert "not issued by this server" in assert_gone(response)["detail"], bad
    # The genuine cursor still works.
    assert (await pull(client, headers, cursor=cursor))["has_more"] is False


async def test_another_users_cursor_is_gone(client: httpx.AsyncClient, world: World) -> None:
    mine = (await pull(client, world.headers("officer_a1")))["next_cursor"]
    for who in ("officer_a2", "secretary_a1"):
        response = await client.get(
            CHANGES_URL, params={"cursor": mine}, headers=world.headers(who)
        )
        assert "another user" in assert_gone(response)["detail"]


async def age_deletes(session: AsyncSession, days: int) -> None:
    await session.execute(
        update(Change)
        .where(col(Change.op) == "delete")
        .values(changed_at=utcnow() - timedelta(days=days))
    )


async def prune(session: AsyncSession) -> int:
    """Age every delete entry past the retention and prune; returns the new horizon."""
    retention = get_settings().change_retention_days
    await age_deletes(session, retention + 1)
    pruned = await prune_deletes(session, older_than_days=retention, now=utcnow())
    assert pruned.deleted >= 1
    left = await session.scalar(select(col(Change.seq)).where(col(Change.op) == "delete").limit(1))
    assert left is None
    return pruned.horizon


async def test_a_cursor_older_than_the_pruned_deletes_is_gone(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    headers = world.headers("officer_a1")
    replica = Replica()
    await replica.sync(client, headers)
    before_move = replica.cursor
    await move_household(client, world, world.households["a1"].id, VILLAGE_A3)
    assert deletes(await replica.sync(client, headers))
    retention = get_settings().change_retention_days

    # Deletes younger than the retention are kept, and every cursor goes on.
    kept = await prune_deletes(session, older_than_days=retention, now=utcnow())
    assert kept.deleted == 0
    assert (await pull(client, headers, cursor=before_move))["changes"]
    await prune(session)

    # The cursor from before the move would miss the deletion: gone.
    body = assert_gone(
        await client.get(CHANGES_URL, params={"cursor": before_move}, headers=headers)
    )
    assert f"older than the {retention} days" in body["detail"]
    # The phone that received the deletion goes on; a fresh download starts again.
    assert (await pull(client, headers, cursor=replica.cursor))["changes"] == []
    fresh = Replica()
    await fresh.sync(client, headers)
    await assert_replica_matches(client, session, fresh, headers, [VILLAGE_A1])


async def test_a_fresh_download_after_a_prune_gives_a_cursor_that_works(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    # A delete elsewhere in the county, pruned; nothing changes in A2 afterwards.
    await move_household(client, world, world.households["a1"].id, VILLAGE_A3)
    await prune(session)
    headers = world.headers("officer_a2")
    replica = Replica()
    await replica.sync(client, headers)
    await assert_replica_matches(client, session, replica, headers, [VILLAGE_A2])

    # The phone did what the 410 told it: its next pull must not be a 410 again.
    response = await client.get(CHANGES_URL, params={"cursor": replica.cursor}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["changes"] == []


# --- what the feed shows -------------------------------------------------------------------


async def test_households_in_the_feed_are_masked_as_get_masks_them(
    client: httpx.AsyncClient, world: World
) -> None:
    a1 = ("household", str(world.households["a1"].id))
    shown: dict[str, dict[str, Any]] = {}
    for who in ("officer_a1", "secretary_a1"):
        replica = Replica()
        await replica.sync(client, world.headers(who))
        shown[who] = replica.objects[a1]["data"]
        assert shown[who] == await served(client, world.headers(who), a1)

    officer, secretary = shown["officer_a1"], shown["secretary_a1"]
    assert officer["pii_masked"] is False
    assert officer["phone"] == PHONE_A1
    assert ID_HEAD_A1 in [m["id_number"] for m in officer["members"]]
    assert secretary["pii_masked"] is True
    assert secretary["phone"] != PHONE_A1 and secretary["phone"]
    assert PHONE_A1 not in json.dumps(secretary)
    assert ID_HEAD_A1 not in json.dumps(secretary)
    assert [m["id"] for m in secretary["members"]] == [m["id"] for m in officer["members"]]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
async def test_a_limit_out_of_range_is_invalid(
    client: httpx.AsyncClient, world: World, limit: str
) -> None:
    response = await client.get(
        CHANGES_URL, params={"limit": limit}, headers=world.headers("officer_a1")
    )
    problem(response, 422, "validation_failed", "query.limit")


async def test_limits_at_the_bounds_are_accepted(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await populate(client, session, world, villages=(VILLAGE_A1,))
    headers = world.headers("officer_a1")
    one = await pull(client, headers, limit=1)
    assert len(one["changes"]) == 1 and one["has_more"] is True
    everything = await pull(client, headers, limit=500)
    assert len(everything["changes"]) == 8 and everything["has_more"] is False
    assert len((await pull(client, headers))["changes"]) == 8  # the default: 100


async def test_the_feed_needs_a_token(client: httpx.AsyncClient) -> None:
    problem(await client.get(CHANGES_URL), 401, "not_authenticated")


async def test_a_village_inside_another_assigned_region_is_delivered_once(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """An officer assigned town A1 and village A1 in it gets each change once."""
    officer = world.users["officer_a1"]
    session.add(UserRegion(user_id=officer.id, region_code=TOWN_A1))
    await session.flush()
    seen: list[tuple[str, str, int]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(CHANGES_URL, params=params, headers=world.headers("officer_a1"))
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [(c["type"], c["id"], c["version"]) for c in body["changes"]]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    assert len(seen) == len(set(seen))
    households = {c_id for c_type, c_id, _ in seen if c_type == "household"}
    assert households == {str(world.households["a1"].id), str(world.households["a2"].id)}
