"""Household progress: the exit rule's new reasons (issue 14, item 7) and the `monitoring`
section (item 8). Each exit reason has a trigger and a near miss. The clock is frozen at NOW.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.households.models import Household, Member
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.progress import household as progress_service
from tests.builders import COUNTY_A, VILLAGE_A1, World, make_household, make_id_number
from tests.progress.household_builders import add_measure, add_snapshot, add_visit

API = "/api/v1"
NOW = datetime(2026, 3, 15, 4, 0, tzinfo=UTC)  # today is 2026-03-15 (UTC)
ALL_OK = dict.fromkeys(("food", "clothing", "education", "medical", "housing", "water"), "ok")


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_service, "utcnow", lambda: NOW)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T02:00:00+00:00")


async def progress(client: httpx.AsyncClient, world: World, household: Household) -> Any:
    response = await client.get(
        f"{API}/households/{household.id}/progress", headers=world.headers("officer_a1")
    )
    assert response.status_code == 200, response.text
    return response.json()


HEAD = {"birth": "19800101", "relation": "head", "in_school": False, "labour": "normal"}


async def household_with(
    session: AsyncSession,
    world: World,
    *,
    members: list[dict[str, Any]] | None = None,
    annual: list[tuple[int, str, str]] | None = None,
) -> Household:
    """A poor household meeting the exit rule but for what the arguments change: annual
    snapshots (year, recorded day, yuan per household of 3) 2019: 3300 and 2020: 4100 per
    person over the national lines (3218, 4000), every indicator ok, every member insured."""
    household = await make_household(
        session,
        village=VILLAGE_A1,
        members=[
            {
                "id_number": make_id_number(i, m["birth"]) if m.get("birth") else None,
                "relation": m.get("relation", "child"),
                "labour": m.get("labour", "none"),
                "in_school": m.get("in_school", False),
                "medical_insurance": m.get("medical_insurance", True),
            }
            for i, m in enumerate(members if members is not None else [HEAD])
        ],
    )
    author = world.users["officer_a1"]
    for year, day, wage in annual or [(2019, "2019-12-01", "9900"), (2020, "2020-12-01", "12300")]:
        await add_snapshot(
            session, household, author=author, year=year, recorded_at=at(day), wage_income=wage
        )
    await add_visit(session, household, author=author, visited_at=at("2026-03-01"), checks=ALL_OK)
    return household


def codes_of(body: Any) -> list[str]:
    return [reason["code"] for reason in body["exit"]["reasons"]]


async def test_a_household_meeting_the_whole_rule_is_eligible(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    body = await progress(client, world, await household_with(session, world))
    assert body["exit"] == {"eligible": True, "reasons": []}
    assert body["income"]["latest_year"]["poverty_line"] == "4000.00"


@pytest.mark.parametrize(
    ("annual", "reasons"),
    [
        # 2019 at the line (3218): not above it.
        ([(2019, "2019-12-01", "9654"), (2020, "2020-12-01", "12300")], ["income_not_stable"]),
        ([(2019, "2019-12-01", "9654.03"), (2020, "2020-12-01", "12300")], []),
        # One annual year only.
        ([(2020, "2020-12-01", "12300")], ["income_not_stable"]),
        # A second annual snapshot of 2020 corrects the first: the years are 2020 and 2019.
        (
            [
                (2019, "2019-12-01", "9900"),
                (2020, "2020-06-01", "12300"),
                (2020, "2020-12-01", "11700"),  # 3900: below 4000
            ],
            ["income_below_line", "income_not_stable"],
        ),
        (
            [
                (2019, "2019-12-01", "9000"),  # 3000: below 3218
                (2020, "2020-06-01", "12300"),
                (2020, "2020-12-01", "12600"),
            ],
            ["income_not_stable"],
        ),
        # After 2020 there is no line: two annual years are stable whatever the income.
        ([(2023, "2023-12-01", "3"), (2024, "2024-12-01", "3")], []),
    ],
)
async def test_income_not_stable_over_the_two_latest_annual_years(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    annual: list[tuple[int, str, str]],
    reasons: list[str],
) -> None:
    body = await progress(client, world, await household_with(session, world, annual=annual))
    assert codes_of(body) == reasons


async def test_a_snapshot_of_another_kind_is_no_annual_year(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await household_with(session, world, annual=[(2020, "2020-12-01", "12300")])
    await add_snapshot(
        session,
        household,
        author=world.users["officer_a1"],
        year=2019,
        kind="verification",
        recorded_at=at("2019-12-01"),
        wage_income="9900",
    )
    body = await progress(client, world, household)
    assert codes_of(body) == ["income_not_stable"]
    assert "annual snapshots of 1 year(s)" in body["exit"]["reasons"][0]["detail"]


@pytest.mark.parametrize(
    ("child", "reasons"),
    [
        ({"birth": "20110316", "in_school": False}, ["education_not_secured"]),  # 14
        ({"birth": "20100316", "in_school": False}, ["education_not_secured"]),  # 15 to tomorrow
        ({"birth": "20100315", "in_school": False}, []),  # 16 today
        ({"birth": "20200315", "in_school": False}, ["education_not_secured"]),  # 6 today
        ({"birth": "20200316", "in_school": False}, []),  # 5
        ({"birth": "20150101", "in_school": True}, []),
        ({"birth": None, "in_school": False}, []),  # no ID number: no known age
        ({"birth": "19500101", "medical_insurance": False}, ["medical_not_secured"]),
    ],
)
async def test_member_checks(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    child: dict[str, Any],
    reasons: list[str],
) -> None:
    household = await household_with(session, world, members=[HEAD, child])
    body = await progress(client, world, household)
    assert codes_of(body) == reasons
    for reason in body["exit"]["reasons"]:
        assert reason["detail"].startswith("1 member(s)")


async def test_a_removed_member_is_not_checked(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    child = {"birth": "20150101", "in_school": False, "medical_insurance": False}
    household = await household_with(session, world, members=[HEAD, child])
    body = await progress(client, world, household)
    assert codes_of(body) == ["education_not_secured", "medical_not_secured"]
    member = await session.get(Member, await _member_id(session, household, born="2015-01-01"))
    assert member is not None
    member.removed_at, member.removed_reason = at("2026-01-01"), "moved_out"
    await session.flush()
    assert codes_of(await progress(client, world, household)) == []


async def _member_id(session: AsyncSession, household: Household, *, born: str) -> uuid.UUID:
    found = await session.scalars(
        select(col(Member.id)).where(
            col(Member.household_id) == household.id,
            col(Member.birth_date) == date.fromisoformat(born),
        )
    )
    return found.one()


# --- monitoring --------------------------------------------------------------------------------


async def add_case(
    session: AsyncSession,
    world: World,
    household: Household,
    *,
    status: str,
    identified_on: date | None = None,
    category: str = "marginal",
) -> MonitoringCase:
    author = world.users["officer_a1"].id
    closed = status in ("cleared", "rejected")
    case = MonitoringCase(
        id=uuid.uuid4(),
        household_id=household.id,
        revision=1,
        content_hash="0" * 64,
        author_id=author,
        updated_by=author,
        category=category,
        risk_types=["illness", "high_rigid_expenses"],
        found_via="self_report",
        found_on=date(2025, 8, 1),
        status=status,
        identified_on=identified_on,
        cleared_on=date(2026, 2, 1) if status == "cleared" else None,
        clearing_method="assisted" if status == "cleared" else None,
        open_household_id=None if closed else household.id,
    )
    session.add(case)
    await session.flush()
    return case


async def add_alert(
    session: AsyncSession, world: World, household: Household, *, status: str, occurred_on: date
) -> MonitoringAlert:
    member = (
        await session.scalars(select(Member).where(col(Member.household_id) == household.id))
    ).first()
    assert member is not None
    alert = MonitoringAlert(
        county_code=COUNTY_A,
        department="medical_insurance",
        id_number_hash=member.id_number_hash or "x" * 64,
        kind="large_medical_expense",
        amount=3_000_000,
        occurred_on=occurred_on,
        household_id=household.id,
        member_id=member.id,
        village_code=household.village_code,
        status=status,
        imported_by=world.users["admin_a"].id,
    )
    session.add(alert)
    await session.flush()
    return alert


async def test_monitoring_shows_the_open_case_its_clearing_and_open_alerts(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await make_household(
        session,
        village=VILLAGE_A1,
        origin="ordinary",
        members=[{"id_number": make_id_number(1, "19800101"), "labour": "normal"}],
    )
    await add_case(session, world, household, status="cleared", identified_on=date(2025, 1, 2))
    case = await add_case(
        session, world, household, status="identified", identified_on=date(2025, 12, 1)
    )
    second = await add_alert(session, world, household, status="open", occurred_on=date(2026, 2, 1))
    first = await add_alert(session, world, household, status="open", occurred_on=date(2025, 9, 1))
    await add_alert(session, world, household, status="verified", occurred_on=date(2025, 7, 1))

    body = await progress(client, world, household)

    monitoring = body["monitoring"]
    assert monitoring["case"] == {
        "id": str(case.id),
        "category": "marginal",
        "status": "identified",
        "identified_on": "2025-12-01",
        "risk_types": ["illness", "high_rigid_expenses"],
    }
    assert monitoring["clearing"]["eligible"] is False
    assert [r["code"] for r in monitoring["clearing"]["reasons"]] == [
        "too_soon",
        "income_below_threshold",
        "income_not_stable",
        "guarantee_not_secured",
        "no_measure",
    ]
    assert monitoring["clearing"]["reasons"][0]["detail"].startswith(
        "identified on 2025-12-01, 104 days ago"
    )
    assert monitoring["open_alerts"] == [
        {
            "id": str(alert.id),
            "department": "medical_insurance",
            "kind": "large_medical_expense",
            "occurred_on": str(alert.occurred_on),
        }
        for alert in (first, second)
    ]
    # The same reasons as the clearing rule gives the step check.
    author = world.users["officer_a1"]
    await add_measure(
        session,
        household,
        author=author,
        title="临时救助",
        status="done",
        start_date=date(2025, 12, 1),
    )
    body = await progress(client, world, household)
    assert "no_measure" not in [r["code"] for r in body["monitoring"]["clearing"]["reasons"]]


async def test_clearing_is_null_before_identification(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    await add_case(session, world, household, status="town_reviewed", category="sudden_hardship")
    monitoring = (await progress(client, world, household))["monitoring"]
    assert monitoring["case"]["status"] == "town_reviewed"
    assert monitoring["case"]["identified_on"] is None
    assert monitoring["clearing"] is None
    assert monitoring["open_alerts"] == []


async def test_a_closed_case_is_no_open_case(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    await add_case(session, world, household, status="rejected")
    await add_case(session, world, household, status="cleared", identified_on=date(2025, 1, 2))
    monitoring = (await progress(client, world, household))["monitoring"]
    assert monitoring == {"case": None, "clearing": None, "open_alerts": []}
