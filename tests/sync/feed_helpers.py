"""Helpers of the sync tests: a phone's replica of the change feed, writers, the DB's truth."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.households.models import Household
from app.records.models import IncomeSnapshot, Measure, Visit
from tests.builders import World
from tests.records.bodies import BODIES, SEGMENTS, put
from tests.sync.helpers import batch

API = "/api/v1"
CHANGES_URL = f"{API}/sync/changes"
BATCHES_URL = f"{API}/sync/batches"
STATUS_URL = f"{API}/sync/status"
RECORD_MODELS: dict[str, Any] = {
    "visit": Visit,
    "income_snapshot": IncomeSnapshot,
    "measure": Measure,
}
ENTRY_KEYS = {"type", "id", "op", "version", "household_id", "data"}
# A first download of a few dozen objects never needs more pages than this.
MAX_PAGES = 200

Key = tuple[str, str]  # (type, id) as the feed names an object


def key(entry: dict[str, Any]) -> Key:
    return entry["type"], entry["id"]


async def pull(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """One page of the feed, checked for shape."""
    params: dict[str, Any] = {}
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = limit
    response = await client.get(CHANGES_URL, headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"changes", "next_cursor", "has_more"}, body
    assert isinstance(body["next_cursor"], str) and body["next_cursor"]
    if limit is not None:
        assert len(body["changes"]) <= limit
    for entry in body["changes"]:
        assert set(entry) == ENTRY_KEYS, entry
        assert entry["op"] in ("upsert", "delete"), entry
        assert (entry["data"] is None) == (entry["op"] == "delete"), entry
        if entry["op"] == "upsert":
            assert entry["data"]["id"] == entry["id"], entry
            version_field = "version" if entry["type"] == "household" else "revision"
            assert entry["data"][version_field] == entry["version"], entry
    return dict(body)


@dataclass
class Replica:
    """What a phone holds after applying the feed in order, and every entry it received."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    pages: int = 0

    def apply(self, changes: list[dict[str, Any]]) -> None:
        for entry in changes:
            self.received.append(entry)
            if entry["op"] == "upsert":
                self.objects[key(entry)] = entry
            else:
                self.objects.pop(key(entry), None)

    async def page(
        self, client: httpx.AsyncClient, headers: dict[str, str], *, limit: int | None = None
    ) -> dict[str, Any]:
        """Pull one page, apply it and keep its cursor."""
        body = await pull(client, headers, cursor=self.cursor, limit=limit)
        self.apply(body["changes"])
        self.cursor = body["next_cursor"]
        self.pages += 1
        return body

    async def sync(
        self, client: httpx.AsyncClient, headers: dict[str, str], *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Pull until has_more is false; returns the entries of this round, in order."""
        start = len(self.received)
        for _ in range(MAX_PAGES):
            body = await self.page(client, headers, limit=limit)
            if not body["has_more"]:
                return self.received[start:]
        raise AssertionError(f"still has_more after {MAX_PAGES} pages")

    def versions(self) -> dict[Key, int]:
        return {k: e["version"] for k, e in self.objects.items()}


def duplicates(entries: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    """(op, type, id, version) received more than once."""
    seen = Counter((e["op"], e["type"], e["id"], e["version"]) for e in entries)
    return [k for k, n in seen.items() if n > 1]


def upserts(entries: list[dict[str, Any]]) -> dict[Key, int]:
    """Version of each object upserted (asserting it was upserted only once)."""
    found = [e for e in entries if e["op"] == "upsert"]
    out = {key(e): e["version"] for e in found}
    assert len(out) == len(found), f"objects upserted twice: {duplicates(found)}"
    return out


def deletes(entries: list[dict[str, Any]]) -> set[Key]:
    found = [key(e) for e in entries if e["op"] == "delete"]
    assert len(set(found)) == len(found), f"objects deleted twice: {found}"
    return set(found)


# --- the database's truth --------------------------------------------------------------------


async def stored_objects(session: AsyncSession, villages: list[str]) -> dict[Key, int]:
    """Every household and record in `villages` with its version, read from the database."""
    out: dict[Key, int] = {}
    in_villages = col(Household.village_code).in_(villages)
    rows = await session.execute(
        select(col(Household.id), col(Household.version)).where(in_villages)
    )
    out.update({("household", str(i)): v for i, v in rows})
    for record_type, model in RECORD_MODELS.items():
        rows = await session.execute(
            select(col(model.id), col(model.revision))
            .join(Household, col(Household.id) == col(model.household_id))
            .where(in_villages)
        )
        out.update({(record_type, str(i)): v for i, v in rows})
    return out


def url_of(object_key: Key) -> str:
    object_type, object_id = object_key
    if object_type == "household":
        return f"{API}/households/{object_id}"
    return f"{API}/{SEGMENTS[object_type]}/{object_id}"


async def served(client: httpx.AsyncClient, headers: dict[str, str], object_key: Key) -> Any:
    """The object as its GET endpoint gives it to the same caller."""
    response = await client.get(url_of(object_key), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def assert_replica_matches(
    client: httpx.AsyncClient,
    session: AsyncSession,
    replica: Replica,
    headers: dict[str, str],
    villages: list[str],
) -> None:
    """The replica holds exactly the objects of `villages`, each as GET serves it now."""
    assert replica.versions() == await stored_objects(session, villages)
    for object_key, entry in replica.objects.items():
        assert entry["data"] == await served(client, headers, object_key), object_key


# --- writers ---------------------------------------------------------------------------------


async def write_record(
    client: httpx.AsyncClient,
    world: World,
    record_type: str,
    household_id: Any,
    *,
    who: str = "officer_a1",
    record_id: uuid.UUID | None = None,
    revision: int = 1,
    **changes: Any,
) -> uuid.UUID:
    """PUT a record as `who`; returns its id."""
    record_id = record_id or uuid.uuid4()
    body = BODIES[record_type](household_id, revision, **changes)
    response = await put(client, world, record_type, body, record_id=record_id, who=who)
    assert response.status_code in (200, 201), response.text
    assert response.json()["revision"] == revision
    return record_id


async def household_version(
    client: httpx.AsyncClient, world: World, household_id: Any, who: str
) -> int:
    response = await client.get(f"{API}/households/{household_id}", headers=world.headers(who))
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


async def patch_household(
    client: httpx.AsyncClient, world: World, household_id: Any, *, who: str, **changes: Any
) -> int:
    """PATCH a household at its current version; returns the new version."""
    version = await household_version(client, world, household_id, who)
    response = await client.patch(
        f"{API}/households/{household_id}",
        json=changes,
        headers={**world.headers(who), "If-Match": f'"v{version}"'},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


async def move_household(
    client: httpx.AsyncClient,
    world: World,
    household_id: Any,
    village: str,
    *,
    who: str = "admin_a",
) -> int:
    """Move a household to `village` (county admin); returns its new version."""
    version = await household_version(client, world, household_id, who)
    response = await client.post(
        f"{API}/households/{household_id}/move",
        json={"village_code": village, "reason": "易地搬迁"},
        headers={**world.headers(who), "If-Match": f'"v{version}"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["village_code"] == village
    return int(body["version"])


async def post_batch(
    client: httpx.AsyncClient,
    token: str,
    device_id: str,
    records: list[dict[str, Any]],
    *,
    app_version: str | None = "2.3.0",
    batch_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """POST a batch with a device token; returns the response document."""
    body = batch(records, device_id=device_id, batch_id=batch_id, app_version=app_version)
    response = await client.post(
        BATCHES_URL, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def batch_record(record_type: str, household_id: Any, **changes: Any) -> dict[str, Any]:
    """A new field record as a batch carries it (the revision beside the data)."""
    data = BODIES[record_type](household_id, **changes)
    revision = data.pop("revision")
    return {"type": record_type, "id": str(uuid.uuid4()), "revision": revision, "data": data}


def household_edit(household_id: Any, base_version: int, **changes: Any) -> dict[str, Any]:
    """An offline household edit as a batch carries it."""
    return {
        "type": "household",
        "id": str(household_id),
        "base_version": base_version,
        "changes": changes,
    }
