"""ACCEPTANCE 3: household edits made offline on two phones, merged or held as conflicts, and the
conflicts listed and resolved by the county or the village's first secretary."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.households.id_numbers import mask_phone
from app.households.models import Household, HouseholdChange
from app.sync.models import Change, SyncConflict
from tests.assertions import problem
from tests.builders import COUNTY_A, PHONE_A1, VILLAGE_A1, VILLAGE_A2, World
from tests.clients.builders import make_client, minted_token
from tests.sync.helpers import (
    API,
    CONFLICTS,
    batch,
    count,
    household_edit,
    phone_headers,
    sent_ok,
    table_counts,
)

OFFICER_PHONE = "phone-officer-a1"
SECRETARY_PHONE = "phone-secretary-a1"
PHONE_X = "13900000001"
PHONE_Y = "13900000002"


@dataclass
class Phones:
    """officer_a1 and secretary_a1, each logged in on a phone of their own."""

    officer: dict[str, str]
    secretary: dict[str, str]

    async def edit(
        self,
        client: httpx.AsyncClient,
        who: str,
        household_id: uuid.UUID,
        base_version: int,
        changes: dict[str, Any],
    ) -> dict[str, Any]:
        """One household edit in a batch of its own; its result."""
        headers, device = (
            (self.officer, OFFICER_PHONE) if who == "officer" else (self.secretary, SECRETARY_PHONE)
        )
        body = batch([household_edit(household_id, base_version, changes)], device_id=device)
        answer = await sent_ok(client, body, headers)
        result: dict[str, Any] = answer["results"][0]
        return result


@pytest.fixture
async def phones(session: AsyncSession, world: World) -> Phones:
    return Phones(
        officer=await phone_headers(session, world, "officer_a1", OFFICER_PHONE),
        secretary=await phone_headers(session, world, "secretary_a1", SECRETARY_PHONE),
    )


async def household_now(session: AsyncSession, household_id: uuid.UUID) -> Household:
    """The household as the database holds it now."""
    household = await session.scalar(
        select(Household)
        .where(col(Household.id) == household_id)
        .execution_options(populate_existing=True)
    )
    assert household is not None
    return household


async def history(session: AsyncSession, household_id: uuid.UUID) -> list[HouseholdChange]:
    return list(
        await session.scalars(
            select(HouseholdChange)
            .where(col(HouseholdChange.household_id) == household_id)
            .order_by(col(HouseholdChange.version))
            .execution_options(populate_existing=True)
        )
    )


async def conflict_row(session: AsyncSession, conflict_id: str) -> SyncConflict:
    row = await session.scalar(
        select(SyncConflict)
        .where(col(SyncConflict.id) == uuid.UUID(conflict_id))
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def make_conflict(
    client: httpx.AsyncClient, world: World, phones: Phones
) -> tuple[dict[str, Any], int]:
    """Both phones edit household a1's phone from the same base: the secretary's is the conflict.

    Returns the secretary's result and the base version.
    """
    household = world.households["a1"]
    base = household.version
    first = await phones.edit(client, "officer", household.id, base, {"phone": PHONE_X})
    assert first["status"] == "updated", first
    result = await phones.edit(
        client, "secretary", household.id, base, {"phone": PHONE_Y, "group_name": "三组"}
    )
    assert result["status"] == "conflict", result
    return result, base


# --- merging offline edits ------------------------------------------------------------------


async def test_disjoint_edits_from_the_same_base_both_apply(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    household = world.households["a1"]
    base = household.version
    first = await phones.edit(client, "officer", household.id, base, {"phone": PHONE_X})
    second = await phones.edit(client, "secretary", household.id, base, {"group_name": "三组"})
    assert (first["status"], first["version"]) == ("updated", base + 1)
    assert (second["status"], second["version"]) == ("updated", base + 2)
    assert "conflict_id" not in second

    now = await household_now(session, household.id)
    assert (now.phone, now.group_name, now.version) == (PHONE_X, "三组", base + 2)
    changes = [(c.version, c.changes, c.actor_id) for c in await history(session, household.id)]
    assert changes == [
        (base + 1, {"phone": [PHONE_A1, PHONE_X]}, world.users["officer_a1"].id),
        (base + 2, {"group_name": [None, "三组"]}, world.users["secretary_a1"].id),
    ]
    assert await count(session, SyncConflict) == 0
    # Phones learn the new version from the change feed.
    change = await session.scalar(
        select(Change).where(
            col(Change.entity_type) == "household", col(Change.entity_id) == household.id
        )
    )
    assert change is not None and change.version == base + 2


async def test_an_overlapping_edit_is_a_conflict_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    household = world.households["a1"]
    result, base = await make_conflict(client, world, phones)
    assert result["code"] == "household_conflict"
    assert result["retryable"] is False
    assert result["fields"] == ["phone"]
    # The secretary has no pii:read: the server's phone comes masked, as GET shows it.
    assert result["server_values"] == {"phone": mask_phone(PHONE_X)}
    assert result["version"] == base + 1
    assert "phone" in result["detail"]

    # The whole edit waits for a person, its other field too.
    now = await household_now(session, household.id)
    assert (now.phone, now.group_name, now.version) == (PHONE_X, None, base + 1)
    assert [c.version for c in await history(session, household.id)] == [base + 1]
    conflict = await conflict_row(session, result["conflict_id"])
    assert conflict.household_id == household.id
    assert conflict.village_code == VILLAGE_A1
    assert conflict.status == "open" and conflict.resolution is None
    assert (conflict.base_version, conflict.server_version) == (base, base + 1)
    assert conflict.fields == ["phone"]
    assert conflict.client_changes == {"phone": PHONE_Y, "group_name": "三组"}
    assert conflict.server_values == {"phone": PHONE_X}
    assert conflict.user_id == world.users["secretary_a1"].id
    assert conflict.device_id == SECRETARY_PHONE


async def test_the_same_value_on_both_sides_is_not_a_conflict(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    household = world.households["a1"]
    base = household.version
    await phones.edit(client, "officer", household.id, base, {"phone": PHONE_X})
    same = await phones.edit(client, "secretary", household.id, base, {"phone": PHONE_X})
    assert (same["status"], same["version"]) == ("unchanged", base + 1)
    # The same value plus a field nobody else touched: merged.
    more = await phones.edit(
        client, "secretary", household.id, base, {"phone": PHONE_X, "group_name": "二组"}
    )
    assert (more["status"], more["version"]) == ("updated", base + 2)
    now = await household_now(session, household.id)
    assert (now.phone, now.group_name, now.version) == (PHONE_X, "二组", base + 2)
    assert [c.changes for c in await history(session, household.id)] == [
        {"phone": [PHONE_A1, PHONE_X]},
        {"group_name": [None, "二组"]},
    ]
    assert await count(session, SyncConflict) == 0


async def test_the_same_conflicting_edit_sent_again_finds_the_open_conflict(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    household = world.households["a1"]
    result, base = await make_conflict(client, world, phones)
    again = await phones.edit(
        client, "secretary", household.id, base, {"group_name": "三组", "phone": PHONE_Y}
    )
    assert again["status"] == "conflict"
    assert again["conflict_id"] == result["conflict_id"]
    assert await count(session, SyncConflict) == 1
    # Another edit from the same base is a conflict of its own.
    other = await phones.edit(client, "secretary", household.id, base, {"phone": "13900000003"})
    assert other["status"] == "conflict"
    assert other["conflict_id"] != result["conflict_id"]
    assert await count(session, SyncConflict, col(SyncConflict.status) == "open") == 2
    assert (await household_now(session, household.id)).version == base + 1


async def test_household_edits_that_can_never_apply_are_rejected(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    household = world.households["a1"]
    hid, version = household.id, household.version
    before = await table_counts(session)
    items = [
        household_edit(hid, version + 1, {"phone": PHONE_X}),  # 0 a version never issued
        household_edit(hid, 0, {"phone": PHONE_X}),  # 1
        household_edit(hid, "7", {"phone": PHONE_X}),  # 2
        household_edit(hid, version, {"phone": "call me"}),  # 3
        household_edit(hid, version, {"number": "3715221012019999"}),  # 4 not editable
        household_edit(hid, version, {"head_name": None}),  # 5
        {**household_edit(hid, version, {}), "changes": ["phone"]},  # 6
        household_edit(world.households["a2"].id, 1, {"phone": PHONE_X}),  # 7 not in A1
        household_edit(uuid.uuid4(), 1, {"phone": PHONE_X}),  # 8 unknown
        household_edit(hid, version, {"planned_exit_year": 2001}),  # 9 before identified_year
    ]
    answer = await sent_ok(client, batch(items, device_id=OFFICER_PHONE), phones.officer)
    results = answer["results"]
    assert [r["status"] for r in results] == ["rejected"] * len(items)
    fields = {
        0: "records.0.base_version",
        1: "records.1.base_version",
        2: "records.2.base_version",
        3: "records.3.changes.phone",
        4: "records.4.changes.number",
        5: "records.5.changes.head_name",
        6: "records.6.changes",
        9: "records.9.changes.planned_exit_year",
    }
    for i, field in fields.items():
        assert results[i]["code"] == "validation_failed", results[i]
        assert [e["field"] for e in results[i]["errors"]] == [field], results[i]
    assert results[0]["errors"][0]["type"] == "ahead_of_server"
    assert str(version) in results[0]["errors"][0]["message"]
    # Another village's household and an unknown one answer alike.
    assert results[7]["code"] == results[8]["code"] == "household_not_found"
    assert results[7]["detail"].replace(items[7]["id"], "?") == results[8]["detail"].replace(
        items[8]["id"], "?"
    )

    now = await household_now(session, hid)
    assert (now.phone, now.version, now.head_name) == (PHONE_A1, version, "张建国")
    after = await table_counts(session)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
        "sync_batch": 1,
        "device": 1,
    }


# --- the conflicts list -----------------------------------------------------------------------


async def test_conflicts_are_listed_for_the_county_and_the_village_secretary(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    result, base = await make_conflict(client, world, phones)
    household = world.households["a1"]
    for who in ("admin_a", "secretary_a1"):
        response = await client.get(CONFLICTS, headers=world.headers(who))
        assert response.status_code == 200, response.text
        page = response.json()
        assert [item["id"] for item in page["items"]] == [result["conflict_id"]], who
        assert page["next_cursor"] is None
    [item] = page["items"]
    secretary = world.users["secretary_a1"]
    assert item["household_id"] == str(household.id)
    assert item["village_code"] == VILLAGE_A1
    assert item["device_id"] == SECRETARY_PHONE
    assert item["user"] == {
        "id": str(secretary.id),
        "username": secretary.username,
        "display_name": secretary.display_name,
        "role": "first_secretary",
    }
    assert (item["base_version"], item["server_version"]) == (base, base + 1)
    assert item["fields"] == ["phone"]
    assert item["status"] == "open" and item["resolution"] is None
    assert item["resolved_by"] is None and item["resolved_at"] is None
    assert "client_hash" not in item and "user_id" not in item

    # Filters: by region and by status.
    admin = world.headers("admin_a")
    in_a1 = await client.get(CONFLICTS, params={"region": VILLAGE_A1}, headers=admin)
    assert [i["id"] for i in in_a1.json()["items"]] == [result["conflict_id"]]
    in_a2 = await client.get(CONFLICTS, params={"region": VILLAGE_A2}, headers=admin)
    assert in_a2.json()["items"] == []
    resolved = await client.get(CONFLICTS, params={"status": "resolved"}, headers=admin)
    assert resolved.json()["items"] == []
    problem(
        await client.get(CONFLICTS, params={"status": "closed"}, headers=admin),
        422,
        "validation_failed",
        "query.status",
    )

    # Another county sees none; officers may not look.
    other = await client.get(CONFLICTS, headers=world.headers("admin_b"))
    assert other.status_code == 200 and other.json()["items"] == []
    for who in ("officer_a1", "officer_a2"):
        problem(await client.get(CONFLICTS, headers=world.headers(who)), 403, "forbidden")
    problem(await client.get(CONFLICTS), 401, "not_authenticated")


async def test_a_first_secretary_sees_her_own_values_and_the_servers_masked(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    """DOMAIN.md: phones are personal data, shown masked to anyone without the right to see
    them; a first secretary's token has no pii:read, and GET /households masks them. What she
    sent herself is hers to see: only the other side of her conflict is masked."""
    result, _ = await make_conflict(client, world, phones)
    household = await client.get(
        f"{API}/households/{world.households['a1'].id}", headers=phones.secretary
    )
    assert household.json()["pii_masked"] is True
    assert household.json()["phone"] != PHONE_X
    listed = (await client.get(CONFLICTS, headers=phones.secretary)).json()["items"][0]
    assert listed["client_changes"]["phone"] == PHONE_Y
    shown = [listed["server_values"]["phone"], result["server_values"]["phone"]]
    assert PHONE_X not in shown
    assert all(phone.startswith(PHONE_X[:3]) for phone in shown), shown

    # Anyone else without pii:read sees both sides masked.
    reader = await make_client(session, admin=world.users["admin_a"], region=COUNTY_A)
    other = {"Authorization": f"Bearer {minted_token(reader)}"}
    theirs = await client.get(CONFLICTS, headers=other)
    assert theirs.status_code == 200, theirs.text
    [item] = theirs.json()["items"]
    assert PHONE_Y not in str(item) and PHONE_X not in str(item)


# --- resolving --------------------------------------------------------------------------------


async def resolve(
    client: httpx.AsyncClient, conflict_id: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return await client.post(f"{CONFLICTS}/{conflict_id}/resolve", json=body, headers=headers)


async def test_resolving_with_the_servers_values_keeps_the_household(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    result, base = await make_conflict(client, world, phones)
    household = world.households["a1"]
    response = await resolve(client, result["conflict_id"], {"choice": "server"}, phones.secretary)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["household_version"] == base + 1
    conflict = body["conflict"]
    assert conflict["status"] == "resolved" and conflict["resolution"] == "server"
    assert conflict["resolved_values"] == {}
    assert conflict["resolved_by"] == str(world.users["secretary_a1"].id)
    assert conflict["resolved_at"] is not None

    now = await household_now(session, household.id)
    assert (now.phone, now.group_name, now.version) == (PHONE_X, None, base + 1)
    assert len(await history(session, household.id)) == 1
    row = await conflict_row(session, result["conflict_id"])
    assert (row.status, row.resolution, row.resolved_by) == (
        "resolved",
        "server",
        world.users["secretary_a1"].id,
    )
    # Gone from the open list, in the resolved one.
    admin = world.headers("admin_a")
    assert (await client.get(CONFLICTS, headers=admin)).json()["items"] == []
    resolved = (await client.get(CONFLICTS, params={"status": "resolved"}, headers=admin)).json()
    assert [i["id"] for i in resolved["items"]] == [result["conflict_id"]]


async def test_resolving_with_the_phones_values_applies_its_whole_edit(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    result, base = await make_conflict(client, world, phones)
    household = world.households["a1"]
    response = await resolve(
        client, result["conflict_id"], {"choice": "client"}, world.headers("admin_a")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["household_version"] == base + 2
    assert body["conflict"]["resolution"] == "client"
    assert body["conflict"]["resolved_values"] == {"phone": PHONE_Y, "group_name": "三组"}

    now = await household_now(session, household.id)
    assert (now.phone, now.group_name, now.version) == (PHONE_Y, "三组", base + 2)
    last = (await history(session, household.id))[-1]
    assert last.version == base + 2
    assert last.changes == {"phone": [PHONE_X, PHONE_Y], "group_name": [None, "三组"]}
    assert last.actor_id == world.users["admin_a"].id
    change = await session.scalar(
        select(Change).where(
            col(Change.entity_type) == "household", col(Change.entity_id) == household.id
        )
    )
    assert change is not None and change.version == base + 2


async def test_resolving_with_merged_values_checks_and_applies_them(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    result, base = await make_conflict(client, world, phones)
    household = world.households["a1"]
    admin = world.headers("admin_a")
    conflict_id = result["conflict_id"]
    before = await table_counts(session)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"choice": "merged", "values": {"phone": "call me"}}, "body.values.phone"),
        ({"choice": "merged", "values": {"head_name": None}}, "body.values.head_name"),
        ({"choice": "merged", "values": {"number": "1"}}, "body.values.number"),
        ({"choice": "merged", "values": {"exit_year": 2001}}, "body.values.exit_year"),
        ({"choice": "merged"}, "body.values"),
        ({"choice": "server", "values": {"phone": PHONE_Y}}, "body.values"),
        ({"choice": "client", "values": {"phone": PHONE_Y}}, "body.values"),
        ({"choice": "both"}, "body.choice"),
    ]
    for body, field in cases:
        refused = await resolve(client, conflict_id, body, admin)
        problem(refused, 422, "validation_failed", field)
    assert await table_counts(session) == before
    row = await conflict_row(session, conflict_id)
    assert row.status == "open" and row.resolution is None
    now = await household_now(session, household.id)
    assert (now.phone, now.version) == (PHONE_X, base + 1)

    merged = {"phone": "13900000009", "group_name": "三组"}
    response = await resolve(client, conflict_id, {"choice": "merged", "values": merged}, admin)
    assert response.status_code == 200, response.text
    assert response.json()["household_version"] == base + 2
    assert response.json()["conflict"]["resolved_values"] == merged
    now = await household_now(session, household.id)
    assert (now.phone, now.group_name, now.version) == ("13900000009", "三组", base + 2)
    assert (await history(session, household.id))[-1].changes == {
        "phone": [PHONE_X, "13900000009"],
        "group_name": [None, "三组"],
    }


async def test_who_may_resolve_and_only_once(
    client: httpx.AsyncClient, session: AsyncSession, world: World, phones: Phones
) -> None:
    result, base = await make_conflict(client, world, phones)
    conflict_id = result["conflict_id"]
    body = {"choice": "client"}
    problem(
        await resolve(client, conflict_id, body, world.headers("admin_b")),
        404,
        "conflict_not_found",
    )
    problem(
        await resolve(client, str(uuid.uuid4()), body, world.headers("admin_a")),
        404,
        "conflict_not_found",
    )
    for who in ("officer_a1", "officer_a2"):
        problem(await resolve(client, conflict_id, body, world.headers(who)), 403, "forbidden")
    problem(await resolve(client, conflict_id, body, {}), 401, "not_authenticated")
    assert (await conflict_row(session, conflict_id)).status == "open"
    assert (await household_now(session, world.households["a1"].id)).version == base + 1

    first = await resolve(client, conflict_id, body, world.headers("admin_a"))
    assert first.status_code == 200, first.text
    twice = await resolve(client, conflict_id, {"choice": "server"}, world.headers("secretary_a1"))
    problem(twice, 409, "conflict_already_resolved")
    row = await conflict_row(session, conflict_id)
    assert (row.resolution, row.resolved_by) == ("client", world.users["admin_a"].id)
    assert (await household_now(session, world.households["a1"].id)).version == base + 2


@pytest.mark.parametrize("code", ["008605638598-q7T6VF", "000000000000"])
async def test_a_region_that_names_no_division_is_a_422(
    client: httpx.AsyncClient, world: World, code: str
) -> None:
    """The shape of a code, but no province: the field is named (schemathesis found a 500)."""
    for who in ("admin_a", "town_a1", "secretary_a1"):
        response = await client.get(CONFLICTS, params={"region": code}, headers=world.headers(who))
        problem(response, 422, "validation_failed", "query.region")
