"""ACCEPTANCE 1 for every record type: the same record sent 5 times is created once, then unchanged.

"The same" is the same content, however it is spelled: 0.1 and "0.10" yuan, an offset or UTC,
a default given or left out.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.records.models import IncomeSnapshot, Measure, Visit
from tests.assertions import problem
from tests.builders import World
from tests.records.bodies import BODIES, counts, put

RECORD_TYPES = ["visit", "income_snapshot", "measure"]
MODELS = {"visit": Visit, "income_snapshot": IncomeSnapshot, "measure": Measure}
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


async def rows_of(session: AsyncSession, record_type: str, record_id: uuid.UUID) -> int:
    model = MODELS[record_type]
    stmt = select(func.count()).select_from(model).where(model.id == record_id)
    return int(await session.scalar(stmt) or 0)


@pytest.mark.parametrize("record_type", RECORD_TYPES)
async def test_same_record_five_times_is_created_once_then_unchanged(
    client: httpx.AsyncClient, session: AsyncSession, world: World, record_type: str
) -> None:
    record_id = uuid.uuid4()
    body = BODIES[record_type](world.households["a1"].id)
    before = await counts(session)
    answers = []
    for _ in range(5):
        response = await put(client, world, record_type, body, record_id=record_id)
        assert response.status_code in (200, 201), response.text
        answers.append(response)

    assert [(r.status_code, r.headers["Record-Outcome"]) for r in answers] == [(201, "created")] + [
        (200, "unchanged")
    ] * 4
    # Every answer shows the one stored record, unchanged by the retries.
    assert all(r.json() == answers[0].json() for r in answers)
    assert answers[0].json()["id"] == str(record_id)
    assert answers[0].json()["revision"] == 1
    assert await rows_of(session, record_type, record_id) == 1
    after = await counts(session)
    table = MODELS[record_type].__tablename__
    assert after[table] == before[table] + 1
    # A measure keeps one revision row for the timeline, not one per retry.
    expected_revisions = before["measure_revision"] + (record_type == "measure")
    assert after["measure_revision"] == expected_revisions


@pytest.mark.parametrize("record_type", RECORD_TYPES)
async def test_a_retry_from_another_permitted_caller_is_unchanged(
    client: httpx.AsyncClient, session: AsyncSession, world: World, record_type: str
) -> None:
    """The secretary's or admin's phone resending it changes nothing, not even the author."""
    record_id = uuid.uuid4()
    body = BODIES[record_type](world.households["a1"].id)
    first = await put(client, world, record_type, body, record_id=record_id)
    assert first.status_code == 201, first.text
    for who in ("secretary_a1", "admin_a"):
        again = await put(client, world, record_type, body, record_id=record_id, who=who)
        assert again.status_code == 200, again.text
        assert again.headers["Record-Outcome"] == "unchanged"
        assert again.json() == first.json()
        assert again.json()["author_id"] == str(world.users["officer_a1"].id)
    # Another village's officer learns nothing, not even that the id is taken.
    hidden = await put(client, world, record_type, body, record_id=record_id, who="officer_a2")
    problem(hidden, 404, "household_not_found")
    assert await rows_of(session, record_type, record_id) == 1


# The same content, spelled differently: each list is sent in turn to one record id.
SPELLINGS: dict[str, list[dict[str, Any]]] = {
    "income_snapshot": [
        {"wage_income": 0.1, "business_income": 0.2, "transfer_dibao": 1200},
        {"wage_income": "0.10", "business_income": "0.2", "transfer_dibao": "1200.00"},
        {"wage_income": "0.1", "business_income": 0.20, "transfer_dibao": 1200.0},
        # Zero components given or left out; the time in UTC or with its offset.
        {
            "wage_income": "0.1",
            "business_income": "0.20",
            "transfer_dibao": "1200",
            "property_other": 0,
            "transfer_other": "0.00",
            "recorded_at": "2024-12-10T07:00:00Z",
        },
    ],
    "measure": [
        {"funds_yuan": 20000, "funds_spent_yuan": 0.1},
        {"funds_yuan": "20000.00", "funds_spent_yuan": "0.10"},
        {"funds_yuan": 20000.0, "funds_spent_yuan": "0.1", "status": "planned", "progress_pct": 0},
        {"funds_yuan": "20000", "funds_spent_yuan": 0.10, "progress_reports": []},
    ],
    "visit": [
        {
            "visited_at": "2026-11-20T09:30:00+08:00",
            "photos": [{"sha256": SHA.upper(), "tag": "sign_in"}],
            "location": {"lat": 36.2356, "lon": 115.6718},
        },
        {
            "visited_at": "2026-11-20T01:30:00Z",
            "photos": [{"sha256": SHA, "tag": "sign_in", "caption": None}],
            "location": {"lat": 36.2356, "lon": 115.6718, "crs": "wgs84"},
            "checks": {"food": "unknown"},
        },
        {
            "visited_at": "2026-11-20T01:30:00.000+00:00",
            "photos": [{"sha256": SHA, "tag": "sign_in", "measure_id": None}],
            "location": {"lat": 36.2356, "lon": 115.6718, "accuracy_m": None},
            "address": None,
        },
    ],
}


@pytest.mark.parametrize("record_type", RECORD_TYPES)
async def test_the_same_content_spelled_differently_is_unchanged(
    client: httpx.AsyncClient, session: AsyncSession, world: World, record_type: str
) -> None:
    record_id = uuid.uuid4()
    household_id = world.households["a1"].id
    outcomes = []
    for spelling in SPELLINGS[record_type]:
        body = {**BODIES[record_type](household_id), **spelling}
        response = await put(client, world, record_type, body, record_id=record_id)
        assert response.status_code in (200, 201), response.text
        outcomes.append(response.headers["Record-Outcome"])
    assert outcomes == ["created"] + ["unchanged"] * (len(SPELLINGS[record_type]) - 1)
    assert await rows_of(session, record_type, record_id) == 1


@pytest.mark.parametrize(
    ("record_type", "change"),
    [
        ("income_snapshot", {"wage_income": "0.11"}),
        ("income_snapshot", {"household_size": 4}),
        ("measure", {"funds_yuan": "20000.01"}),
        ("measure", {"progress_pct": 1}),
        ("visit", {"findings": "户主慢性病用药正常。"}),
        ("visit", {"checks": {"water": "ok"}}),
    ],
)
async def test_different_content_at_the_same_revision_is_a_conflict(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    record_type: str,
    change: dict[str, Any],
) -> None:
    record_id = uuid.uuid4()
    household_id = world.households["a1"].id
    first = await put(
        client, world, record_type, BODIES[record_type](household_id), record_id=record_id
    )
    assert first.status_code == 201, first.text
    before = await counts(session)
    conflict = await put(
        client,
        world,
        record_type,
        {**BODIES[record_type](household_id), **change},
        record_id=record_id,
    )
    body = problem(conflict, 409, "conflict")
    assert body["record"] == first.json()
    assert "Record-Outcome" not in conflict.headers
    # A later revision with that content is an update; the old revision is then stale.
    updated = await put(
        client,
        world,
        record_type,
        {**BODIES[record_type](household_id, 2), **change},
        record_id=record_id,
    )
    assert updated.status_code == 200 and updated.headers["Record-Outcome"] == "updated"
    stale = await put(
        client, world, record_type, BODIES[record_type](household_id), record_id=record_id
    )
    stale_body = problem(stale, 409, "stale")
    assert stale_body["record"] == updated.json()
    assert stale_body["record"]["revision"] == 2
    after = await counts(session)
    assert {k: v for k, v in after.items() if k != "measure_revision"} == {
        k: v for k, v in before.items() if k != "measure_revision"
    }
