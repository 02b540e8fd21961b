"""Monitoring cases as the phone and the reviewers send them (cases, steps and sync tests)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.households.models import Household, Member
from app.monitoring import steps as monitoring_steps
from app.monitoring.models import MonitoringAlert
from tests.builders import COUNTY_A, VILLAGE_A1, World, make_household, make_id_number
from tests.progress.household_builders import add_measure, add_snapshot, add_visit

API = "/api/v1"
CASES = f"{API}/monitoring-cases"

# Who takes each step in the little world (all of village A1, town A1, county A).
ACTORS = {
    "village_review": "officer_a1",
    "town_review": "town_a1",
    "county_approval": "admin_a",
    "clearance_village_review": "secretary_a1",
    "clearance_town_review": "town_a1",
    "clearance_county_approval": "admin_a",
}
IDENTIFICATION = ("village_review", "town_review", "county_approval")
CLEARANCE = ("clearance_village_review", "clearance_town_review", "clearance_county_approval")

# The dates a clearable household's case is identified on and cleared on (the clock frozen).
IDENTIFIED = date(2026, 1, 5)
CLEARED = date(2026, 8, 1)
ALL_OK = dict.fromkeys(("food", "clothing", "education", "medical", "housing", "water"), "ok")


def case_body(household_id: Any, revision: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "revision": revision,
        "household_id": str(household_id),
        "category": "sudden_hardship",
        "risk_types": ["illness"],
        "found_via": "cadre_visit",
        "found_on": "2025-12-20",
        "description": "户主住院, 自付医疗费较多",
    }
    return {**body, **changes}


async def put_case(
    client: httpx.AsyncClient,
    world: World,
    body: dict[str, Any],
    *,
    case_id: uuid.UUID | str | None = None,
    who: str = "officer_a1",
) -> httpx.Response:
    return await client.put(
        f"{CASES}/{case_id or uuid.uuid4()}", json=body, headers=world.headers(who)
    )


async def opened(
    client: httpx.AsyncClient, world: World, household: Household, **changes: Any
) -> dict[str, Any]:
    """A new case of the household, which must be created."""
    response = await put_case(client, world, case_body(household.id, **changes))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def take(
    client: httpx.AsyncClient,
    world: World,
    case_id: Any,
    step: str,
    decision: str = "approve",
    *,
    who: str | None = None,
    **extra: Any,
) -> httpx.Response:
    if step == "clearance_village_review" and decision == "approve":
        extra.setdefault("method", "assisted")
    return await client.post(
        f"{CASES}/{case_id}/steps",
        json={"step": step, "decision": decision, **extra},
        headers=world.headers(who or ACTORS[step]),
    )


async def taken(
    client: httpx.AsyncClient, world: World, case_id: Any, *steps: str
) -> dict[str, Any]:
    """Take these steps (approved, each by its usual actor); the case after the last."""
    body: dict[str, Any] = {}
    for step in steps:
        response = await take(client, world, case_id, step)
        assert response.status_code == 201, (step, response.text)
        body = response.json()
    return body


def freeze_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """The procedure's clock (identified_on, cleared_on, the clearing rule's today)."""
    monkeypatch.setattr(monitoring_steps, "today", lambda: day)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T02:00:00+00:00")


async def clearable_household(session: AsyncSession, world: World, **fields: Any) -> Household:
    """An ordinary household of village A1 that the clearing rule lets clear on CLEARED, for
    a case identified on IDENTIFIED: a working head, a child at school, both insured; income
    above the threshold twice, 182 days apart; a measure under way; a visit with every check ok."""
    author = world.users["officer_a1"]
    household = await make_household(
        session,
        village=VILLAGE_A1,
        origin=fields.pop("origin", "ordinary"),
        members=[
            {
                "id_number": make_id_number(501, "19860801"),
                "relation": "head",
                "labour": "normal",
                "medical_insurance": True,
            },
            {
                "id_number": make_id_number(502, "20160801"),
                "relation": "child",
                "labour": "none",
                "in_school": True,
                "medical_insurance": True,
            },
        ],
        **fields,
    )
    for recorded in ("2026-01-05", "2026-07-06"):
        await add_snapshot(
            session,
            household,
            author=author,
            year=2026,
            recorded_at=at(recorded),
            kind="monitoring",
            household_size=2,
            wage_income="16000",
        )
    await add_visit(session, household, author=author, visited_at=at("2026-07-25"), checks=ALL_OK)
    await add_measure(
        session,
        household,
        author=author,
        title="公益岗位",
        status="in_progress",
        start_date=date(2026, 2, 1),
    )
    return household


async def make_alert(
    session: AsyncSession, world: World, household: Household, **fields: Any
) -> MonitoringAlert:
    """A department alert about the household's first member (as an import stores one)."""
    member = await session.scalar(
        select(Member).where(col(Member.household_id) == household.id).limit(1)
    )
    assert member is not None
    alert = MonitoringAlert(
        county_code=COUNTY_A,
        department=fields.pop("department", "medical_insurance"),
        id_number_hash=member.id_number_hash or uuid.uuid4().hex,
        kind=fields.pop("kind", "large_medical_expense"),
        occurred_on=fields.pop("occurred_on", date(2025, 12, 1)),
        household_id=household.id,
        member_id=member.id,
        village_code=household.village_code,
        imported_by=world.users["admin_a"].id,
        **fields,
    )
    session.add(alert)
    await session.flush()
    return alert
