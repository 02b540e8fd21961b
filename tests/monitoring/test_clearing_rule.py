"""The clearing rule (issue 14, item 4): each reason triggered, and a near miss that is not.

A household that may be cleared (`clearable`) is changed in one thing at a time; the rule
(`app.monitoring.rules.clearing_reasons`) must then answer exactly the one reason, or none.
Every date is fixed: identified on IDENTIFIED, judged on TODAY.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.households.models import Household, Member
from app.monitoring.models import IncomeExclusion
from app.monitoring.rules import clearing_reasons
from app.monitoring.vocabulary import ClearingBlock
from tests.builders import COUNTY_A, VILLAGE_A1, World, make_household, make_id_number
from tests.progress.household_builders import add_measure, add_snapshot, add_visit, set_threshold

IDENTIFIED = date(2026, 1, 5)
TODAY = date(2026, 8, 1)  # 208 days later
ALL_OK = dict.fromkeys(("food", "clothing", "education", "medical", "housing", "water"), "ok")


def at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


@dataclass
class Setup:
    """What the clearable household has; each test changes one thing."""

    members: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"birth": "19860801", "relation": "head", "labour": "normal"},  # 40 on TODAY
            {"birth": "20160801", "relation": "child", "in_school": True},  # 10
        ]
    )
    # (year, recorded_at, yuan wage per household of two, extra components)
    snapshots: list[tuple[int, datetime, str, dict[str, str]]] = field(
        default_factory=lambda: [
            (2026, at("2026-01-05"), "16000", {}),  # on the day of identification
            (2026, at("2026-07-06"), "16000", {}),  # 182 days later
        ]
    )
    visits: list[tuple[datetime, dict[str, str]]] = field(
        default_factory=lambda: [(at("2026-07-25"), ALL_OK)]
    )
    measures: list[tuple[date | None, str]] = field(
        default_factory=lambda: [(date(2026, 2, 1), "in_progress")]
    )
    identified_on: date = IDENTIFIED
    today: date = TODAY


async def reasons_of(session: AsyncSession, world: World, setup: Setup) -> list[ClearingBlock]:
    household = await build(session, world, setup)
    found = await clearing_reasons(
        session, household=household, identified_on=setup.identified_on, today=setup.today
    )
    assert all(reason.detail for reason in found)
    return [reason.code for reason in found]


async def build(session: AsyncSession, world: World, setup: Setup) -> Household:
    author = world.users["officer_a1"]
    household = await make_household(
        session,
        village=VILLAGE_A1,
        origin="ordinary",
        members=[
            {
                "id_number": make_id_number(i, m["birth"]) if m.get("birth") else None,
                "relation": m.get("relation", "child"),
                "labour": m.get("labour", "none"),
                "in_school": m.get("in_school", False),
                "medical_insurance": m.get("medical_insurance", True),
            }
            for i, m in enumerate(setup.members)
        ],
    )
    for year, recorded_at, wage, extra in setup.snapshots:
        await add_snapshot(
            session,
            household,
            author=author,
            year=year,
            recorded_at=recorded_at,
            kind="monitoring",
            household_size=2,
            wage_income=wage,
            **extra,
        )
    for visited_at, checks in setup.visits:
        await add_visit(session, household, author=author, visited_at=visited_at, checks=checks)
    for start, status in setup.measures:
        await add_measure(
            session, household, author=author, title="公益岗位", status=status, start_date=start
        )
    return household


async def test_a_household_meeting_every_condition_may_be_cleared(
    session: AsyncSession, world: World
) -> None:
    assert await reasons_of(session, world, Setup()) == []


async def test_with_nothing_recorded_every_reason_but_too_soon_holds(
    session: AsyncSession, world: World
) -> None:
    setup = Setup(members=[], snapshots=[], visits=[], measures=[])
    assert await reasons_of(session, world, setup) == [
        ClearingBlock.income_below_threshold,
        ClearingBlock.income_not_stable,
        ClearingBlock.guarantee_not_secured,
        ClearingBlock.no_measure,
        ClearingBlock.no_labour,
    ]


# --- too_soon ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"), [(date(2026, 7, 5), True), (date(2026, 7, 6), False)]
)
async def test_too_soon_under_182_days(
    session: AsyncSession, world: World, today: date, expected: bool
) -> None:
    found = await reasons_of(session, world, Setup(today=today))
    assert found == ([ClearingBlock.too_soon] if expected else [])


# --- income ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("wage", "expected"), [("12000.00", True), ("12000.02", False)])
async def test_income_below_threshold_at_the_threshold(
    session: AsyncSession, world: World, wage: str, expected: bool
) -> None:
    # National monitoring threshold 6000 (2021, carried forward): 12000 / 2 is not above it.
    setup = Setup()
    setup.snapshots.append((2026, at("2026-07-20"), wage, {}))
    found = await reasons_of(session, world, setup)
    assert found == ([ClearingBlock.income_below_threshold] if expected else [])


async def test_income_below_threshold_uses_the_region_threshold_of_the_year(
    session: AsyncSession, world: World
) -> None:
    await set_threshold(session, scope=COUNTY_A, year=2026, monitoring_threshold_fen=900_000)
    # Both snapshots (8000 per person) are now under the county's 9000.
    assert await reasons_of(session, world, Setup()) == [
        ClearingBlock.income_below_threshold,
        ClearingBlock.income_not_stable,
    ]


async def test_excluded_items_are_left_out_of_the_monitoring_income(
    session: AsyncSession, world: World
) -> None:
    relief = {"transfer_one_off_relief": "8000"}
    setup = Setup(
        snapshots=[
            (2026, at("2026-01-05"), "8000", relief),  # 8000 per person with the relief
            (2026, at("2026-07-06"), "8000", relief),
        ]
    )
    assert await reasons_of(session, world, setup) == []
    # The county leaves one-off relief out: 4000 per person, under the threshold.
    session.add(IncomeExclusion(scope=COUNTY_A, item="transfer_one_off_relief"))
    await session.flush()
    assert await reasons_of(session, world, setup) == [
        ClearingBlock.income_below_threshold,
        ClearingBlock.income_not_stable,
    ]


async def test_the_most_specific_scope_with_rows_decides_the_exclusions(
    session: AsyncSession, world: World
) -> None:
    relief = {"transfer_one_off_relief": "8000"}
    setup = Setup(
        snapshots=[
            (2026, at("2026-01-05"), "8000", relief),
            (2026, at("2026-07-06"), "8000", relief),
        ]
    )
    session.add(IncomeExclusion(scope="national", item="transfer_one_off_relief"))
    # The village's own set (housing subsidy only) replaces the national one.
    session.add(IncomeExclusion(scope=VILLAGE_A1, item="transfer_housing_subsidy"))
    await session.flush()
    assert await reasons_of(session, world, setup) == []


@pytest.mark.parametrize(("second", "expected"), [("2026-07-05", True), ("2026-07-06", False)])
async def test_income_not_stable_needs_two_above_182_days_apart(
    session: AsyncSession, world: World, second: str, expected: bool
) -> None:
    setup = Setup(
        snapshots=[
            (2026, at("2026-01-05", 23), "16000", {}),
            (2026, at(second, 0), "16000", {}),
        ]
    )
    found = await reasons_of(session, world, setup)
    assert found == ([ClearingBlock.income_not_stable] if expected else [])


async def test_income_not_stable_counts_only_snapshots_since_identification(
    session: AsyncSession, world: World
) -> None:
    setup = Setup(
        snapshots=[
            (2025, at("2026-01-04", 23), "16000", {}),  # the day before: not counted
            (2026, at("2026-07-06"), "16000", {}),
            (2026, at("2026-07-20"), "16000", {}),
        ]
    )
    assert await reasons_of(session, world, setup) == [ClearingBlock.income_not_stable]


async def test_income_not_stable_counts_only_snapshots_above_their_threshold(
    session: AsyncSession, world: World
) -> None:
    setup = Setup(
        snapshots=[
            (2026, at("2026-01-05"), "11000", {}),  # 5500: under 6000
            (2026, at("2026-03-01"), "16000", {}),
            (2026, at("2026-07-06"), "16000", {}),  # 127 days after the first above
        ]
    )
    assert await reasons_of(session, world, setup) == [ClearingBlock.income_not_stable]


# --- rigid expenses ----------------------------------------------------------------------------


@pytest.mark.parametrize(("medical", "expected"), [("8000.01", True), ("8000.00", False)])
async def test_rigid_expenses_over_half_the_net_income(
    session: AsyncSession, world: World, medical: str, expected: bool
) -> None:
    setup = Setup()
    setup.snapshots.append(
        (
            2026,
            at("2026-07-20"),
            "12000",
            {"medical_out_of_pocket": medical, "transfer_dibao": "4000"},
        )
    )
    found = await reasons_of(session, world, setup)
    assert found == ([ClearingBlock.rigid_expenses_unresolved] if expected else [])


async def test_rigid_expenses_of_an_earlier_snapshot_are_resolved(
    session: AsyncSession, world: World
) -> None:
    setup = Setup()
    setup.snapshots.insert(0, (2026, at("2026-02-01"), "16000", {"education_expenses": "9000"}))
    assert await reasons_of(session, world, setup) == []


# --- guarantees --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visits", "expected"),
    [
        ([(at("2026-07-25"), {**ALL_OK, "water": "unknown"})], True),
        ([(at("2026-07-25"), {**ALL_OK, "housing": "not_ok"})], True),
        # The latest visit decides, not each indicator's latest assessment.
        ([(at("2026-07-20"), ALL_OK), (at("2026-07-25"), {"food": "ok"})], True),
        ([(at("2026-07-25"), {"food": "ok"}), (at("2026-07-26"), ALL_OK)], False),
    ],
)
async def test_guarantee_not_secured_by_the_latest_visit(
    session: AsyncSession, world: World, visits: list[Any], expected: bool
) -> None:
    found = await reasons_of(session, world, Setup(visits=visits))
    assert found == ([ClearingBlock.guarantee_not_secured] if expected else [])


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("20110802", True),  # 14 on TODAY, 15 tomorrow
        ("20100802", True),  # 15 until tomorrow
        ("20100801", False),  # 16 today
        ("20200801", True),  # 6 today
        ("20200802", False),  # 5 until tomorrow
    ],
)
async def test_guarantee_not_secured_by_a_school_age_child_out_of_school(
    session: AsyncSession, world: World, birth: str, expected: bool
) -> None:
    setup = Setup()
    setup.members.append({"birth": birth, "in_school": False})
    found = await reasons_of(session, world, setup)
    assert found == ([ClearingBlock.guarantee_not_secured] if expected else [])


async def test_guarantee_not_secured_by_a_member_without_medical_insurance(
    session: AsyncSession, world: World
) -> None:
    setup = Setup()
    setup.members.append({"birth": "19500101", "medical_insurance": False})
    assert await reasons_of(session, world, setup) == [ClearingBlock.guarantee_not_secured]


async def test_a_removed_member_does_not_count(session: AsyncSession, world: World) -> None:
    setup = Setup()
    setup.members.append({"birth": "19500101", "medical_insurance": False})
    household = await build(session, world, setup)
    uninsured = [m for m in await _members(session, household) if not m.medical_insurance]
    uninsured[0].removed_at = at("2026-06-01")
    uninsured[0].removed_reason = "death"
    await session.flush()
    assert (
        await clearing_reasons(session, household=household, identified_on=IDENTIFIED, today=TODAY)
        == []
    )


async def _members(session: AsyncSession, household: Household) -> list[Member]:
    rows = await session.scalars(select(Member).where(col(Member.household_id) == household.id))
    return list(rows.all())


# --- measures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measures", "expected"),
    [
        ([(date(2026, 1, 4), "done")], True),  # started before identification
        ([(date(2026, 1, 5), "done")], False),  # on the day
        ([(date(2026, 3, 1), "planned")], True),
        ([(date(2026, 3, 1), "cancelled")], True),
        ([(None, "in_progress")], True),  # no start date: not shown to be after
        ([(date(2026, 3, 1), "planned"), (date(2026, 3, 2), "in_progress")], False),
    ],
)
async def test_no_measure_applied_since_identification(
    session: AsyncSession, world: World, measures: list[Any], expected: bool
) -> None:
    found = await reasons_of(session, world, Setup(measures=measures))
    assert found == ([ClearingBlock.no_measure] if expected else [])


# --- labour ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ({"birth": "19610802", "labour": "normal"}, False),  # 64, 65 tomorrow
        ({"birth": "19610801", "labour": "normal"}, True),  # 65 today
        ({"birth": "20100801", "labour": "skilled"}, False),  # 16 today
        ({"birth": "20100802", "labour": "skilled", "in_school": True}, True),  # 15
        ({"birth": "19860801", "labour": "weak"}, True),
        ({"birth": None, "labour": "normal"}, True),  # no ID number: no known age
    ],
)
async def test_no_labour_without_a_working_age_member_able_to_work(
    session: AsyncSession, world: World, head: dict[str, Any], expected: bool
) -> None:
    setup = Setup()
    setup.members[0] = {**head, "relation": "head"}
    found = await reasons_of(session, world, setup)
    assert found == ([ClearingBlock.no_labour] if expected else [])
