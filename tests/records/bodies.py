"""Bodies of field records as a phone sends them, and checks shared by the records tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from app.records.models import IncomeSnapshot, Measure, MeasureRevision, Visit
from tests.builders import World

API = "/api/v1"
# Record type → URL segment of its PUT/GET and of the household's list.
SEGMENTS = {"visit": "visits", "income_snapshot": "income-snapshots", "measure": "measures"}


def ago(**delta: float) -> str:
    """A time this long before now, with an offset, as a phone's clock would give it."""
    return (utcnow() - timedelta(**delta)).isoformat()


def visit_body(household_id: Any, revision: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "revision": revision,
        "household_id": str(household_id),
        "visited_at": ago(hours=2),
        "mode": "in_home",
        "findings": "户主慢性病用药正常",
    }
    return {**body, **changes}


def snapshot_body(household_id: Any, revision: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "revision": revision,
        "household_id": str(household_id),
        "year": 2024,
        "kind": "annual",
        "household_size": 3,
        "recorded_at": "2024-12-10T15:00:00+08:00",
    }
    return {**body, **changes}


def measure_body(household_id: Any, revision: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "revision": revision,
        "household_id": str(household_id),
        "category": "housing_safety",
        "title": "危房改造 (C级)",
        "funds_yuan": "20000.00",
        "start_date": "2026-04-01",
        "due_date": "2026-10-31",
    }
    return {**body, **changes}


BODIES = {"visit": visit_body, "income_snapshot": snapshot_body, "measure": measure_body}


async def put(
    client: httpx.AsyncClient,
    world: World,
    record_type: str,
    body: dict[str, Any],
    *,
    record_id: uuid.UUID | None = None,
    who: str = "officer_a1",
) -> httpx.Response:
    url = f"{API}/{SEGMENTS[record_type]}/{record_id or uuid.uuid4()}"
    return await client.put(url, json=body, headers=world.headers(who))


async def counts(session: AsyncSession) -> dict[str, int]:
    """Rows of every record table: what a refused write must leave as it was."""
    out = {}
    for model in (Visit, IncomeSnapshot, Measure, MeasureRevision):
        out[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
    return out


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Table:
    """Checks every case of a table in one test, then reports all the cases that failed.

    One test per case would build the app and the world again for each: a table of a few
    dozen field errors is much faster checked in one go, and no failure hides another.
    """

    def __init__(self) -> None:
        self.failures: list[str] = []

    @contextmanager
    def case(self, label: object) -> Iterator[None]:
        try:
            yield
        except AssertionError as exc:
            self.failures.append(f"{label}: {exc}")

    def check(self) -> None:
        assert not self.failures, f"{len(self.failures)} failing cases:\n" + "\n".join(
            self.failures
        )
