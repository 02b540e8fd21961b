"""Batches as a phone sends them, and the table counts a refused batch must leave as they were."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from app.devices.models import Device
from app.households.models import HouseholdChange
from app.photos.models import PhotoRef
from app.records.models import IncomeSnapshot, Measure, MeasureRevision, RecordColumns, Visit
from app.sync.models import Change, SyncBatch, SyncConflict
from tests.builders import World, token_for

API = "/api/v1"
BATCHES = f"{API}/sync/batches"
CONFLICTS = f"{API}/sync/conflicts"
CHANGES = f"{API}/sync/changes"
DEVICE = "android-phone-a1"
MODELS: dict[str, type[RecordColumns]] = {
    "visit": Visit,
    "income_snapshot": IncomeSnapshot,
    "measure": Measure,
}


def record(record_type: str, record_id: uuid.UUID | str, body: dict[str, Any]) -> dict[str, Any]:
    """A field record of a batch from a PUT body (tests.records.bodies): revision beside data."""
    data = dict(body)
    revision = data.pop("revision")
    return {"type": record_type, "id": str(record_id), "revision": revision, "data": data}


def household_edit(household_id: Any, base_version: Any, changes: Any) -> dict[str, Any]:
    """A household edit of a batch (values as given: tests send invalid ones too)."""
    return {
        "type": "household",
        "id": str(household_id),
        "base_version": base_version,
        "changes": changes,
    }


def batch(
    records: list[dict[str, Any]],
    *,
    device_id: str = DEVICE,
    batch_id: uuid.UUID | None = None,
    app_version: str | None = "2.3.0",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "batch_id": str(batch_id or uuid.uuid4()),
        "device_id": device_id,
        "records": records,
    }
    if app_version is not None:
        body["app_version"] = app_version
    return body


async def phone_headers(
    session: AsyncSession, world: World, who: str, device_id: str = DEVICE
) -> dict[str, str]:
    """Authorization of `who` logged in on `device_id`, as the app logs in."""
    token = await token_for(session, world.users[who], device_id=device_id)
    return {"Authorization": f"Bearer {token}"}


async def send(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return await client.post(BATCHES, json=body, headers=headers)


async def sent_ok(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """Send a batch that must be accepted (applied for the first time); its answer."""
    response = await send(client, body, headers)
    assert response.status_code == 200, response.text
    assert "Idempotent-Replay" not in response.headers
    answer: dict[str, Any] = response.json()
    return answer


async def count(session: AsyncSession, model: type[SQLModel], *where: Any) -> int:
    stmt = select(func.count()).select_from(model)
    if where:
        stmt = stmt.where(*where)
    return int(await session.scalar(stmt) or 0)


TABLES: tuple[type[SQLModel], ...] = (
    Visit,
    IncomeSnapshot,
    Measure,
    MeasureRevision,
    PhotoRef,
    Change,
    SyncBatch,
    SyncConflict,
    HouseholdChange,
    Device,
)


async def table_counts(session: AsyncSession) -> dict[str, int]:
    """Rows of every table a batch writes to."""
    return {str(model.__tablename__): await count(session, model) for model in TABLES}
