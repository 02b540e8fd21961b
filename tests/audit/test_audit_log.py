"""The audit log: writes and sign-ins recorded (who, device, address, when, masked values),
the county admin's list, and the hash chain that `fieldsync audit verify` checks."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit.models import AuditEntry
from app.core.base import utcnow
from app.devices import service as devices_service
from app.users.models import Role
from tests.assertions import problem
from tests.builders import (
    PASSWORD,
    VILLAGE_A1,
    VILLAGE_B1,
    World,
    make_id_number,
    make_user,
    password_hash,
    token_for,
)

API = "/api/v1"
NEW_PHONE = "13912340000"


async def _entries(session: AsyncSession, **where: object) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(col(AuditEntry.seq))
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEntry, name) == value)
    return list((await session.scalars(stmt)).all())


def _raw(entries: list[AuditEntry]) -> str:
    return json.dumps([e.model_dump(mode="json") for e in entries], ensure_ascii=False)


async def test_a_write_records_who_from_which_device_when_and_what_masked(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    officer = world.users["officer_a1"]
    token = await token_for(session, officer, device_id="android-audit-1")
    household = world.households["a1"]
    before = utcnow()
    headers = {"Authorization": f"Bearer {token}"}

    patched = await client.patch(
        f"{API}/households/{household.id}",
        json={"phone": NEW_PHONE, "head_name": "张建军"},
        headers={**headers, "If-Match": '"v1"'},
    )
    assert patched.status_code == 200, patched.text
    id_number = make_id_number(77, "19900101")
    added = await client.post(
        f"{API}/households/{household.id}/members",
        json={"name": "张小雨", "relation": "child", "added_reason": "newborn",
              "id_number": id_number},
        headers={**headers, "If-Match": patched.headers["etag"]},
    )  # fmt: skip
    assert added.status_code == 201, added.text

    update, bumped = await _entries(session, entity_type="household", action="update")
    assert bumped.changes == {"version": 3}  # the member added moved the household on
    assert update.actor_id == officer.id and update.actor_role == "officer"
    assert update.device_id == "android-audit-1"
    assert update.client_address == "127.0.0.1"
    assert before <= update.at <= utcnow()
    assert update.entity_id == str(household.id) and update.household_id == household.id
    assert update.region_code == VILLAGE_A1
    assert update.changes["phone"] == "139****0000"
    assert update.changes["head_name"] == "张**"
    assert "number" not in update.changes  # only what changed
    [member] = await _entries(session, entity_type="member", action="create", actor_id=officer.id)
    assert member.region_code == VILLAGE_A1 and member.actor_id == officer.id
    assert member.entity_id == added.json()["id"] and member.household_id == household.id
    assert member.changes["id_number"] == id_number[:6] + "********" + id_number[-4:]
    assert member.changes["name"] == "张**"
    assert member.changes["relation"] == "child"
    assert "id_number_hash" not in member.changes or member.changes["id_number_hash"] == "***"
    # No personal data in the clear anywhere in the log.
    raw = _raw(await _entries(session))
    for personal in (NEW_PHONE, id_number, "张建军", "张小雨"):
        assert personal not in raw


async def test_a_refused_write_leaves_no_entry(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    stale = await client.patch(
        f"{API}/households/{household.id}",
        json={"phone": NEW_PHONE},
        headers={**world.headers("officer_a1"), "If-Match": '"v9"'},
    )
    assert stale.status_code == 412
    assert await _entries(session, entity_type="household", action="update") == []


async def test_sign_ins_granted_and_refused_are_recorded(
    client: httpx.AsyncClient, session: AsyncSession, world: World, unique: str
) -> None:
    user = await make_user(
        session, username=f"audit-{unique}", role=Role.officer, regions=[VILLAGE_A1]
    )
    assert user.password_hash == password_hash()

    async def sign_in(username: str, password: str) -> httpx.Response:
        return await client.post(
            f"{API}/auth/token",
            data={"grant_type": "password", "username": username, "password": password,
                  "device_id": "android-audit-2"},
        )  # fmt: skip

    assert (await sign_in(user.username, PASSWORD)).status_code == 200
    assert (await sign_in(user.username, "wrong-password")).status_code == 400
    assert (await sign_in(f"nobody-{unique}", PASSWORD)).status_code == 400

    granted, wrong, unknown = await _entries(session, entity_type="user", actor_id=user.id) + (
        await _entries(session, action="sign_in_failed", actor_id=None)
    )
    assert (granted.action, wrong.action) == ("sign_in", "sign_in_failed")
    for entry in (granted, wrong):
        assert entry.actor_id == user.id and entry.entity_id == str(user.id)
        assert entry.device_id == "android-audit-2" and entry.client_address == "127.0.0.1"
        assert entry.region_code == VILLAGE_A1
    assert granted.changes == {"grant_type": "password", "outcome": "ok"}
    assert wrong.changes == {"grant_type": "password", "outcome": "invalid_grant"}
    # An unknown username is kept masked: it may be a password typed in the wrong field.
    assert unknown.action == "sign_in_failed" and unknown.actor_id is None
    assert unknown.changes["username"] == "n" + "*" * (len(f"nobody-{unique}") - 1)
    assert PASSWORD not in _raw([granted, wrong, unknown])

    # The phone's sightings (last seen, app version) are bookkeeping, not entries of their own:
    # each sign-in names its device.
    assert (await sign_in(user.username, PASSWORD)).status_code == 200
    await devices_service.touch_device(
        session,
        "android-audit-2",
        user_id=user.id,
        app_version="2.4.0",
        synced=True,
        now=utcnow() + timedelta(minutes=5),
    )
    await session.commit()
    assert await _entries(session, entity_type="device") == []
    signed_in = await _entries(session, action="sign_in", actor_id=user.id)
    assert [e.device_id for e in signed_in] == ["android-audit-2"] * 2


async def test_the_county_admin_lists_the_log_of_the_county(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    a2 = world.households["a2"]  # another village of the county, written first
    assert (
        await client.patch(
            f"{API}/households/{a2.id}",
            json={"group_name": "二组"},
            headers={**world.headers("admin_a"), "If-Match": '"v1"'},
        )
    ).status_code == 200
    patched = await client.patch(
        f"{API}/households/{household.id}",
        json={"phone": NEW_PHONE},
        headers={**world.headers("officer_a1"), "If-Match": '"v1"'},
    )
    assert patched.status_code == 200
    b1 = world.households["b1"]
    assert (
        await client.patch(
            f"{API}/households/{b1.id}",
            json={"group_name": "一组"},
            headers={**world.headers("admin_b"), "If-Match": '"v1"'},
        )
    ).status_code == 200

    admin = world.headers("admin_a")
    page = await client.get(f"{API}/audit", params={"region": VILLAGE_A1}, headers=admin)
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert items and {i["region_code"] for i in items} == {VILLAGE_A1}
    newest = items[0]
    assert newest["action"] == "update" and newest["entity_type"] == "household"
    assert newest["actor_id"] == str(world.users["officer_a1"].id)
    assert newest["changes"] == {"phone": "139****0000", "version": 2}
    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs, reverse=True)

    # The whole county, one entry a page: the cursor walks back through it.
    everything = await client.get(f"{API}/audit", headers=admin)
    county = {i["region_code"][:6] for i in everything.json()["items"]}
    assert county == {"371522"}
    first = await client.get(f"{API}/audit", params={"limit": 1}, headers=admin)
    second = await client.get(
        f"{API}/audit", params={"limit": 1, "cursor": first.json()["next_cursor"]}, headers=admin
    )
    assert second.json()["items"][0]["seq"] < first.json()["items"][0]["seq"]

    # Filters: actor, action, time.
    mine = await client.get(
        f"{API}/audit",
        params={"actor_id": str(world.users["officer_a1"].id), "action": "update"},
        headers=admin,
    )
    assert [i["entity_id"] for i in mine.json()["items"]] == [str(household.id)]
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert (await client.get(f"{API}/audit", params={"since": later}, headers=admin)).json()[
        "items"
    ] == []

    # Another county's region: not found, as elsewhere; the other county's admin sees only theirs.
    outside = await client.get(f"{API}/audit", params={"region": VILLAGE_B1}, headers=admin)
    problem(outside, 404, "region_not_found")
    theirs = await client.get(f"{API}/audit", headers=world.headers("admin_b"))
    assert {i["region_code"][:6] for i in theirs.json()["items"]} == {"371523"}
    for caller in ("officer_a1", "town_a1", "secretary_a1"):
        problem(await client.get(f"{API}/audit", headers=world.headers(caller)), 403, "forbidden")


async def test_a_bulk_import_of_department_alerts_is_recorded_row_by_row(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    from tests.monitoring.test_alerts import _import_sample

    await _import_sample(client, world)

    entries = await _entries(session, entity_type="monitoring_alert", action="create")
    assert len(entries) == 3
    assert {e.region_code for e in entries} == {VILLAGE_A1, "371522101202"}
    assert {e.actor_id for e in entries} == {world.users["admin_a"].id}
    assert {e.changes["department"] for e in entries} == {
        "medical_insurance",
        "civil_affairs",
        "human_resources",
    }
    assert all("id_number" not in e.changes and "note" not in e.changes for e in entries)
