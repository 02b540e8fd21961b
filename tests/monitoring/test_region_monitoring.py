"""Region progress, monitoring figures (issue 14, items 8 and acceptance 2): the figures of
GET /regions/{code}/progress equal those computed in plain Python from the rows, for the region
and each child, on both databases.

The generated county of tests/progress/region_data.py gets ordinary households (一般农户, no
status), monitoring cases in every category and status (at most one open per household; several
closed), dated this year and before, and department alerts open and verified. The expected
document is `expected_progress` of region_data, whose monitoring figures count these rows one by
one; `clearable` takes each open identified case's clearing reasons from the clearing rule's
Python form (its agreement with the SQL form is tests/monitoring/test_rules_agree.py).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from app.households.models import Household, Member
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.monitoring.rules import clearing_reasons
from app.records.models import IncomeSnapshot, Measure, Visit
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    PEOPLE,
    TOWN_A1,
    TOWN_A2,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
)
from tests.progress.region_data import (
    CASE_STATUSES,
    CATEGORIES,
    IDENTIFIED_OPEN,
    INDICATORS,
    METHODS,
    NATURAL_A1,
    RISK_TYPES,
    Data,
    Row,
    build,
    expected_progress,
    household_facts,
    years_before,
)

API = "/api/v1"
CASES = [
    ("admin_a", COUNTY_A),
    ("admin_a", TOWN_A1),
    ("admin_a", TOWN_A2),
    ("admin_a", VILLAGE_A1),  # with its natural village
    ("officer_a1", VILLAGE_A1),
    ("town_a1", TOWN_A1),
    ("admin_b", COUNTY_B),
]
ORDINARY = {VILLAGE_A1: 4, NATURAL_A1: 2, VILLAGE_A2: 3, VILLAGE_A3: 4, VILLAGE_B1: 2}


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _record(rng: random.Random, household_id: uuid.UUID, author: uuid.UUID) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": _uuid(rng),
        "household_id": household_id,
        "revision": 1,
        "content_hash": f"{rng.getrandbits(256):064x}",
        "author_id": author,
        "updated_by": author,
        "received_at": now,
        "updated_at": now,
    }


def _ordinary(
    rng: random.Random, village: str, n: int, author: uuid.UUID, today: date, *, clearable: bool
) -> Row:
    """An ordinary household; `clearable`: one meeting the clearing rule if its case was
    identified 200 days ago (a working member, insured; two snapshots above any threshold
    190 days apart; every check ok on the latest visit; a measure done)."""
    now = utcnow()
    household = SimpleNamespace(
        id=_uuid(rng),
        number=f"{village[:12]}{village[13:]:0>2}9{n:03d}",
        village_code=village,
        head_name=f"农户{n}",
        origin="ordinary",
        attribute=None,
        status=None,
        main_cause=None,
        identified_year=None,
        created_at=now,
        updated_at=now,
    )
    row = Row(household)
    for i in range(1 if clearable else rng.randrange(0, 4)):
        row.members.append(
            SimpleNamespace(
                id=_uuid(rng),
                household_id=household.id,
                name=f"成员{i}",
                relation="head" if i == 0 else "child",
                birth_date=years_before(today, 40 if clearable else rng.choice((10, 30, 70))),
                labour="normal" if clearable else rng.choice(("normal", "weak", "none")),
                in_school=True,
                medical_insurance=clearable or rng.random() < 0.8,
                removed_at=None,
                removed_reason=None,
                created_at=now,
                updated_at=now,
            )
        )
    identified = today - timedelta(days=200)
    for days in (1, 191) if clearable else ():
        recorded_at = datetime.combine(identified + timedelta(days=days), datetime.min.time(), UTC)
        row.snapshots.append(
            SimpleNamespace(
                **_record(rng, household.id, author),
                year=recorded_at.year,
                kind="monitoring",
                household_size=1,
                recorded_at=recorded_at,
                wage_income=2_000_000,
                net_income=2_000_000,
                per_capita_income=2_000_000,
                rigid_expenses=0,
            )
        )
    if clearable:
        row.visits.append(
            SimpleNamespace(
                **_record(rng, household.id, author),
                visited_at=now - timedelta(days=3),
                mode="in_home",
                **{f"check_{name}": "ok" for name in INDICATORS},
            )
        )
        row.measures.append(
            SimpleNamespace(
                **_record(rng, household.id, author),
                category="employment",
                title="就业帮扶",
                status="done",
                start_date=identified,
                due_date=None,
                funds=None,
                funds_spent=None,
            )
        )
    return row


def _case(
    rng: random.Random, row: Row, author: uuid.UUID, today: date, *, status: str
) -> SimpleNamespace:
    identified = status in (*IDENTIFIED_OPEN, "cleared")
    identified_on = today - timedelta(
        days=rng.choice((200, 200, 40, 400, today.timetuple().tm_yday))
    )
    cleared = status == "cleared"
    closed = status in ("cleared", "rejected")
    return SimpleNamespace(
        **_record(rng, row.household.id, author),
        category=rng.choice(CATEGORIES),
        risk_types=rng.sample(RISK_TYPES, rng.randrange(1, 6)),
        found_via="cadre_visit",
        found_on=identified_on - timedelta(days=30),
        photos=[],
        status=status,
        identified_on=identified_on if identified else None,
        cleared_on=(
            today - timedelta(days=rng.choice((1, today.timetuple().tm_yday))) if cleared else None
        ),
        clearing_method=rng.choice(METHODS) if cleared else None,
        open_household_id=None if closed else row.household.id,
    )


async def build_monitoring(
    session: AsyncSession, world: World, *, seed: int
) -> tuple[Data, list[Row]]:
    """region_data's county, with ordinary households, cases, alerts and the clearing map."""
    now = utcnow()
    today = now.astimezone(UTC).date()
    data = await build(session, world, seed=seed, now=now)
    rng = random.Random(f"monitoring {seed}")  # not region_data's sequence: other ids
    author = world.users["admin_a"].id
    ordinary: list[Row] = []
    for village, count in ORDINARY.items():
        for n in range(count):
            ordinary.append(_ordinary(rng, village, len(ordinary), author, today, clearable=n == 0))
    for table, records in (
        (Household, [vars(row.household) for row in ordinary]),
        (Member, [vars(m) for row in ordinary for m in row.members]),
        (IncomeSnapshot, [vars(s) for row in ordinary for s in row.snapshots]),
        (Visit, [vars(v) for row in ordinary for v in row.visits]),
        (Measure, [vars(m) for row in ordinary for m in row.measures]),
    ):
        if records:
            await session.execute(insert(table.__table__), records)
    data.rows += ordinary

    cases: list[SimpleNamespace] = []
    for row in ordinary:  # the clearable ones: an identified case of 200 days
        if row.visits:
            case = _case(rng, row, author, today, status=rng.choice(IDENTIFIED_OPEN))
            case.identified_on = today - timedelta(days=200)
            cases.append(case)
    for row in data.rows:
        if any(c.household_id == row.household.id for c in cases) or rng.random() < 0.45:
            continue
        for _ in range(rng.choice((0, 1, 1, 2))):
            cases.append(_case(rng, row, author, today, status=rng.choice(("cleared", "rejected"))))
        cases.append(_case(rng, row, author, today, status=rng.choice(CASE_STATUSES)))
    await session.execute(insert(MonitoringCase.__table__), [vars(c) for c in cases])
    data.cases = cases

    alerts: list[SimpleNamespace] = []
    for row in data.rows:
        current = [m for m in row.members if m.removed_at is None]
        if not current or rng.random() < 0.5:
            continue
        for i in range(rng.randrange(1, 3)):
            alerts.append(
                SimpleNamespace(
                    id=_uuid(rng),
                    county_code=row.household.village_code[:6] + "000000",
                    department="civil_affairs",
                    id_number_hash=f"{rng.getrandbits(256):064x}",
                    kind="assistance_granted",
                    amount=None,
                    occurred_on=today - timedelta(days=i),
                    household_id=row.household.id,
                    member_id=current[0].id,
                    village_code=row.household.village_code[:12],
                    status=rng.choice(("open", "verified")),
                    revision=1,
                    imported_at=now,
                    imported_by=author,
                )
            )
    await session.execute(insert(MonitoringAlert.__table__), [vars(a) for a in alerts])
    data.alerts = alerts

    by_id = {row.household.id: row for row in data.rows}
    for case in cases:
        if case.status in IDENTIFIED_OPEN:
            found = await clearing_reasons(
                session,
                household=by_id[case.household_id].household,
                identified_on=case.identified_on,
                today=today,
            )
            data.clearing[case.household_id] = [reason.code.value for reason in found]
    return data, ordinary


async def progress(client: httpx.AsyncClient, world: World, who: str, code: str) -> Any:
    response = await client.get(f"{API}/regions/{code}/progress", headers=world.headers(who))
    assert response.status_code == 200, response.text
    body = response.json()
    del body["as_of"]
    return body


@pytest.mark.parametrize("seed", [14, 2026])
async def test_monitoring_figures_equal_those_computed_from_the_rows(
    client: httpx.AsyncClient, world: World, session: AsyncSession, seed: int
) -> None:
    data, _ = await build_monitoring(session, world, seed=seed)
    county = expected_progress(data, COUNTY_A, caller_regions=[COUNTY_A])
    _check_the_data_set_exercises_every_figure(data, county)
    for who, code in CASES:
        expected = expected_progress(data, code, caller_regions=PEOPLE[who][1])
        body = await progress(client, world, who, code)
        assert body["monitoring"] == expected["monitoring"], (who, code)
        assert body["households_by_origin"] == expected["households_by_origin"], (who, code)
        assert body == expected, (who, code)
        if body["children"]:
            for figure in ("open_cases", "open_alerts", "under_guarantees", "clearable"):
                assert body["monitoring"][figure] == sum(
                    child["monitoring"][figure] for child in body["children"]
                )


def _check_the_data_set_exercises_every_figure(data: Data, county: dict[str, Any]) -> None:
    """Not vacuous: the county has some of everything; no_labour agrees with the rule's."""
    monitoring = county["monitoring"]
    assert all(monitoring["cases_by_category"].values()), monitoring
    assert all(monitoring["cases_by_status"].values()), monitoring
    assert all(monitoring["cases_by_risk_type"].values()), monitoring
    assert all(monitoring["cleared_this_year"].values()), monitoring
    assert monitoring["identified_this_year"] > 0
    assert monitoring["open_alerts"] > 0
    assert 0 < monitoring["under_guarantees"] < monitoring["open_cases"]
    assert 0 < monitoring["clearable"] < monitoring["open_cases"]
    assert county["households_by_origin"]["ordinary"] > 0
    rows = {row.household.id: row for row in data.rows}
    for household_id, reasons in data.clearing.items():
        no_labour = household_facts(rows[household_id], data).no_labour
        assert ("no_labour" in reasons) is no_labour
    # A case identified last year (or cleared last year) is not this year's.
    year = data.now.astimezone(UTC).year
    assert any(c.identified_on is not None and c.identified_on.year < year for c in data.cases)
    assert any(c.cleared_on is not None and c.cleared_on.year < year for c in data.cases)
