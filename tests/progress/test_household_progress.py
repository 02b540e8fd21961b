"""GET /households/{id}/progress: the progress document of one household.

ACCEPTANCE 1 of issue 6: a seeded household with known snapshots and visits yields exactly the
expected progress document (hand-computed here), including each exit blocking reason and each
risk flag. The clock is frozen at NOW; every date below is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from app.households.models import Household
from app.progress import household as progress_service
from app.progress.household_schemas import HouseholdProgress
from app.thresholds.models import PovertyThreshold
from app.users.models import User
from tests.assertions import problem
from tests.builders import COUNTY_A, VILLAGE_A1, World, make_household
from tests.progress.household_builders import (
    add_measure,
    add_snapshot,
    add_visit,
    hold_photo,
    record_id,
    set_threshold,
    sha,
)

API = "/api/v1"
NOW = datetime(2026, 3, 15, 4, 0, tzinfo=UTC)  # today is 2026-03-15 (UTC)
ALL_OK = dict.fromkeys(("food", "clothing", "education", "medical", "housing", "water"), "ok")
BUT_WATER = {name: check for name, check in ALL_OK.items() if name != "water"}


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_service, "utcnow", lambda: NOW)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T02:00:00+00:00")


def ids(*numbers: int) -> list[str]:
    return [str(record_id(n)) for n in numbers]


async def get_progress(
    client: httpx.AsyncClient, world: World, household: Household, who: str = "officer_a1"
) -> dict[str, Any]:
    response = await client.get(
        f"{API}/households/{household.id}/progress", headers=world.headers(who)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the seeded household ------------------------------------------------------------------

S0, S1, S2, S3, S4 = 100, 101, 102, 103, 104  # snapshots
V0, V1, V2, V3 = 200, 201, 202, 203  # visits
M1, M2, M3, M4, M5 = 301, 302, 303, 304, 305  # measures
SHA_BEFORE, SHA_AFTER, SHA_SIGN_IN, SHA_EVIDENCE = sha(1), sha(2), sha(3), sha(4)


async def seed(session: AsyncSession, household: Household, author: User) -> None:
    """Five snapshots over four years, four visits, five measures, photos, a county threshold."""
    # Per capita (household of 3): S0 2500, S1 3000 (the baseline kind, though not the earliest),
    # S2 6000, S3 9000, S4 4000 (the latest: 2025, recorded after S3).
    for n, year, kind, recorded, components in [
        (S0, 2022, "annual", "2022-12-01", {"wage_income": "7500"}),
        (S1, 2023, "baseline", "2023-12-01", {"wage_income": "9000"}),
        (S2, 2024, "annual", "2024-12-05", {"wage_income": "18000"}),
        (S3, 2025, "annual", "2025-06-30", {"wage_income": "27000"}),
        (
            S4,
            2025,
            "monitoring",
            "2025-12-10",
            {"wage_income": "10000", "business_income": "2500", "business_expenses": "500"},
        ),
    ]:
        await add_snapshot(
            session,
            household,
            author=author,
            id=record_id(n),
            year=year,
            kind=kind,
            recorded_at=at(recorded),
            **components,
        )
    # 2025: no poverty line (none after 2020); the county's own threshold 7000.
    await set_threshold(session, scope=COUNTY_A, year=2025, monitoring_threshold_fen=700_000)

    # housing goes ok → not_ok; medical is not_ok throughout; water is never assessed;
    # V0 and V3 have the same visited_at: V3 (the larger id) is the later one.
    visits: list[tuple[int, str, dict[str, str], list[dict[str, Any]]]] = [
        (
            V1,
            "2025-09-01",
            {**BUT_WATER, "medical": "not_ok"},
            [{"sha256": SHA_BEFORE, "tag": "before", "measure_id": str(record_id(M1))}],
        ),
        (V2, "2025-11-20", {**BUT_WATER, "education": "unknown", "medical": "not_ok"}, []),
        (V0, "2026-01-10", {"education": "not_ok"}, []),
        (
            V3,
            "2026-01-10",
            {**BUT_WATER, "medical": "unknown", "housing": "not_ok"},
            [
                {"sha256": SHA_SIGN_IN, "tag": "sign_in"},
                {"sha256": SHA_AFTER, "tag": "after", "measure_id": str(record_id(M1))},
            ],
        ),
    ]
    for n, day, checks, photos in visits:
        await add_visit(
            session,
            household,
            author=author,
            id=record_id(n),
            visited_at=at(day),
            checks=checks,
            photos=photos,
        )
    report = {"reported_at": at("2026-01-05"), "progress_pct": 60, "note": "主体完工"}
    await add_measure(
        session,
        household,
        author=author,
        id=record_id(M1),
        title="危房改造",
        category="housing_safety",
        status="in_progress",
        funds_yuan="20000",
        funds_spent_yuan="12000.00",
        start_date=date(2025, 8, 1),
        due_date=date(2026, 1, 31),  # overdue
        progress_reports=[{**report, "photos": [{"sha256": SHA_AFTER, "tag": "after"}]}],
    )
    await add_measure(
        session,
        household,
        author=author,
        id=record_id(M2),
        title="光伏收益分红",
        category="photovoltaic",
        status="done",
        funds_yuan="5000",
        funds_spent_yuan="5000",
        due_date=date(2025, 10, 1),  # past, but done
        progress_reports=[{**report, "photos": [{"sha256": SHA_EVIDENCE, "tag": "evidence"}]}],
    )
    await add_measure(
        session,
        household,
        author=author,
        id=record_id(M3),
        title="公益岗位",
        category="public_welfare_job",
        status="planned",
        due_date=date(2026, 6, 30),  # future
    )
    await add_measure(
        session,
        household,
        author=author,
        id=record_id(M4),
        title="饮水改造",
        category="drinking_water",
        status="cancelled",
        funds_yuan="3000",
        due_date=date(2025, 5, 1),  # past, but cancelled
    )
    await add_measure(
        session,
        household,
        author=author,
        id=record_id(M5),
        title="小额信贷",
        category="finance",
        status="not_started",
        funds_yuan="50000",
        funds_spent_yuan="0",
        due_date=date(2026, 3, 15),  # due today: not overdue yet
    )
    await hold_photo(session, SHA_BEFORE, household=household, sender=author)
    await hold_photo(session, SHA_EVIDENCE, household=household, sender=author)


def assessed(value: str, visit: int, day: str) -> dict[str, Any]:
    return {"value": value, "assessed_at": f"{day}T02:00:00Z", "visit_id": str(record_id(visit))}


NEVER = {"value": "unknown", "assessed_at": None, "visit_id": None}
NO_MONITORING = {"case": None, "clearing": None, "open_alerts": []}


def figure(n: int, year: int, per_capita: str) -> dict[str, Any]:
    return {"snapshot_id": str(record_id(n)), "year": year, "per_capita": per_capita}


async def test_seeded_household_yields_the_hand_computed_document(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await make_household(session, village=VILLAGE_A1, status="lifted")
    await seed(session, household, world.users["officer_a1"])

    body = await get_progress(client, world, household)

    assert body == {
        "household_id": str(household.id),
        "as_of": "2026-03-15",
        "income": {
            "baseline": figure(S1, 2023, "3000.00"),
            "latest": figure(S4, 2025, "4000.00"),
            "change": "1000.00",
            "change_pct": 33.3,  # 1000 / 3000
            "series": [
                figure(S0, 2022, "2500.00"),
                figure(S1, 2023, "3000.00"),
                figure(S2, 2024, "6000.00"),
                figure(S4, 2025, "4000.00"),
            ],
            "latest_year": {
                "year": 2025,
                "poverty_line": None,  # none after 2020
                "monitoring_threshold": "7000.00",
                "margin_to_line": None,
                "margin_to_threshold": "-3000.00",
            },
        },
        "guarantees": {
            "food": assessed("ok", V3, "2026-01-10"),
            "clothing": assessed("ok", V3, "2026-01-10"),
            "education": assessed("ok", V3, "2026-01-10"),  # not V0's not_ok (same time)
            "medical": assessed("not_ok", V2, "2025-11-20"),
            "housing": assessed("not_ok", V3, "2026-01-10"),
            "water": NEVER,
        },
        "measures": {
            "total": 5,
            "by_status": {
                "planned": 1,
                "not_started": 1,
                "in_progress": 1,
                "done": 1,
                "cancelled": 1,
            },
            "funds_planned": "78000.00",  # 20000 + 5000 + 3000 + 50000
            "funds_spent": "17000.00",  # 12000 + 5000 + 0
            "overdue": [
                {
                    "measure_id": str(record_id(M1)),
                    "title": "危房改造",
                    "due_date": "2026-01-31",
                    "status": "in_progress",
                }
            ],
            "photo_pairs": [
                {
                    "measure_id": str(record_id(M1)),
                    "title": "危房改造",
                    "before": [{"sha256": SHA_BEFORE, "held": True}],
                    # named by V3 and by M1's progress report: listed once
                    "after": [{"sha256": SHA_AFTER, "held": False}],
                }
            ],
        },
        "visits": {
            "total": 4,
            "last_visited_at": "2026-01-10T02:00:00Z",
            "days_since_last": 64,  # 2026-01-10 → 2026-03-15
            "last_90_days": 2,  # V0 and V3 (since 2025-12-15T04:00Z)
            "overdue": True,
            "cadence_days": 30,
        },
        "exit": {
            "eligible": False,
            # No line after 2020: income blocks nothing (S3 and S2, the annual snapshots of
            # 2025 and 2024, are the two latest years').
            "reasons": [
                {"code": "indicator_not_ok", "detail": "medical: not_ok at the latest assessment"},
                {"code": "indicator_not_ok", "detail": "housing: not_ok at the latest assessment"},
                {"code": "indicator_unknown", "detail": "water: never assessed on a visit"},
            ],
        },
        "risk_flags": [
            {
                "code": "below_monitoring_threshold",
                "evidence": ids(S4),
                "detail": "per-capita income 4000.00 yuan of 2025 is below the monitoring "
                "threshold 7000.00 yuan",
                "indicator": None,
            },
            {
                "code": "income_drop",
                "evidence": ids(S3, S4),
                "detail": "per-capita income fell 55.6 % (threshold 30 %): 9000.00 → 4000.00 yuan",
                "indicator": None,
            },
            {
                "code": "indicator_lost",
                "evidence": ids(V2, V3),
                "detail": "housing: ok on 2025-11-20, not_ok on 2026-01-10",
                "indicator": "housing",
            },
            {
                "code": "measure_overdue",
                "evidence": ids(M1),
                "detail": "1 measure(s) past their due date and neither done nor cancelled",
                "indicator": None,
            },
            {
                "code": "photos_missing",
                "evidence": ids(V3, M1),  # SHA_SIGN_IN (V3) and SHA_AFTER (V3, M1)
                "detail": "2 photo(s) referenced by 2 record(s) not uploaded yet",
                "indicator": None,
            },
            {
                "code": "visit_overdue",
                "evidence": ids(V3),
                "detail": "last visit 64 days ago (cadence 30 days)",
                "indicator": None,
            },
        ],
        "monitoring": NO_MONITORING,
    }


async def test_household_without_records(client: httpx.AsyncClient, world: World) -> None:
    household = world.households["a1"]

    body = await get_progress(client, world, household)

    assert body == {
        "household_id": str(household.id),
        "as_of": "2026-03-15",
        "income": {
            "baseline": None,
            "latest": None,
            "change": None,
            "change_pct": None,
            "series": None,
            "latest_year": None,
        },
        "guarantees": dict.fromkeys(ALL_OK, NEVER),
        "measures": {
            "total": 0,
            "by_status": {
                "planned": 0,
                "not_started": 0,
                "in_progress": 0,
                "done": 0,
                "cancelled": 0,
            },
            "funds_planned": "0.00",
            "funds_spent": "0.00",
            "overdue": [],
            "photo_pairs": [],
        },
        "visits": {
            "total": 0,
            "last_visited_at": None,
            "days_since_last": None,
            "last_90_days": 0,
            "overdue": True,
            "cadence_days": 30,
        },
        "exit": {
            "eligible": False,
            "reasons": [
                {"code": "no_snapshot", "detail": "no income snapshot yet"},
                {
                    "code": "income_not_stable",
                    "detail": "annual snapshots of 0 year(s): the two latest years' are needed, "
                    "both above the line",
                },
                *(
                    {"code": "indicator_unknown", "detail": f"{name}: never assessed on a visit"}
                    for name in ALL_OK
                ),
                {
                    "code": "medical_not_secured",
                    "detail": "3 member(s) without basic medical insurance",
                },
            ],
        },
        "risk_flags": [
            {
                "code": "visit_overdue",
                "evidence": [],
                "detail": "never visited (cadence 30 days)",
                "indicator": None,
            }
        ],
        "monitoring": NO_MONITORING,
    }


async def test_household_meeting_the_exit_rule_is_eligible(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await make_household(session, village=VILLAGE_A1, status="lifted")
    author = world.users["officer_a1"]
    for year in (2024, 2025):
        await add_snapshot(
            session,
            household,
            author=author,
            year=year,
            recorded_at=at(f"{year}-12-01"),
            wage_income="24000",
        )
    visit = await add_visit(
        session, household, author=author, visited_at=NOW - timedelta(days=5), checks=ALL_OK
    )

    body = await get_progress(client, world, household)

    assert body["exit"] == {"eligible": True, "reasons": []}
    assert body["risk_flags"] == []
    assert body["income"]["latest_year"] == {
        "year": 2025,
        "poverty_line": None,  # none after 2020, the line of 2020 is not carried forward
        "monitoring_threshold": "6000.00",  # national, 2021, carried forward
        "margin_to_line": None,
        "margin_to_threshold": "2000.00",
    }
    assert body["guarantees"]["water"] == {
        "value": "ok",
        "assessed_at": "2026-03-10T04:00:00Z",
        "visit_id": str(visit.id),
    }
    assert body["visits"] | {"last_visited_at": None} == {
        "total": 1,
        "last_visited_at": None,
        "days_since_last": 5,
        "last_90_days": 1,
        "overdue": False,
        "cadence_days": 30,
    }


async def test_baseline_falls_back_to_the_earliest_and_unknown_lines_judge_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """No `baseline` kind: the earliest snapshot; a baseline of 0 has no change_pct; without a
    line for 2010, income neither blocks the exit nor is flagged."""
    await session.execute(delete(PovertyThreshold).where(col(PovertyThreshold.year) <= 2010))
    household = await make_household(session, village=VILLAGE_A1, status="lifted")
    author = world.users["officer_a1"]
    first = await add_snapshot(
        session, household, author=author, year=2010, recorded_at=at("2010-03-01")
    )
    last = await add_snapshot(
        session,
        household,
        author=author,
        year=2010,
        recorded_at=at("2010-12-01"),
        business_expenses="300",  # net −300 for 3 people
    )

    body = await get_progress(client, world, household)

    assert body["income"] == {
        "baseline": {"snapshot_id": str(first.id), "year": 2010, "per_capita": "0.00"},
        "latest": {"snapshot_id": str(last.id), "year": 2010, "per_capita": "-100.00"},
        "change": "-100.00",
        "change_pct": None,
        "series": [{"snapshot_id": str(last.id), "year": 2010, "per_capita": "-100.00"}],
        "latest_year": {
            "year": 2010,
            "poverty_line": None,
            "monitoring_threshold": None,
            "margin_to_line": None,
            "margin_to_threshold": None,
        },
    }
    assert [r["code"] for r in body["exit"]["reasons"]] == [
        "income_not_stable",  # one annual year only
        *["indicator_unknown"] * 6,
    ]
    # The previous per capita is 0: no income_drop, however far the latest fell.
    assert [f["code"] for f in body["risk_flags"]] == ["visit_overdue"]


# --- who may read it -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("officer_a1", 200),
        ("secretary_a1", 200),
        ("admin_a", 200),
        ("officer_a2", 404),
        ("admin_b", 404),
    ],
)
async def test_only_the_households_villages_may_read_it(
    client: httpx.AsyncClient, world: World, who: str, status: int
) -> None:
    household = world.households["a1"]
    response = await client.get(
        f"{API}/households/{household.id}/progress", headers=world.headers(who)
    )
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["household_id"] == str(household.id)
    else:
        problem(response, 404, "household_not_found")


async def test_unknown_household_and_no_token(client: httpx.AsyncClient, world: World) -> None:
    unknown = record_id(999)
    problem(
        await client.get(f"{API}/households/{unknown}/progress", headers=world.headers("admin_a")),
        404,
        "household_not_found",
    )
    response = await client.get(f"{API}/households/{world.households['a1'].id}/progress")
    assert response.status_code == 401


# --- cost ----------------------------------------------------------------------------------


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements executed while the test holds the list (savepoints left out)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _busy_household(session: AsyncSession, author: User, n: int) -> Household:
    household = await make_household(session, village=VILLAGE_A1, status="lifted")
    await add_snapshot(
        session, household, author=author, year=2024, recorded_at=at("2024-12-01"), wage_income="9"
    )
    await add_snapshot(
        session, household, author=author, year=2025, recorded_at=at("2025-12-01"), wage_income="3"
    )
    await add_visit(
        session,
        household,
        author=author,
        visited_at=at("2025-12-02"),
        checks={"food": "not_ok"},
        photos=[{"sha256": sha(10_000 + n), "tag": "sign_in"}],
    )
    await add_measure(
        session, household, author=author, title="产业", status="planned", due_date=date(2025, 1, 1)
    )
    return household


async def test_query_count_does_not_grow_with_the_village(
    client: httpx.AsyncClient, session: AsyncSession, world: World, statements: list[str]
) -> None:
    author = world.users["officer_a1"]
    household = await make_household(session, village=VILLAGE_A1, status="lifted")
    await seed(session, household, author)
    await _busy_household(session, author, 0)

    statements.clear()
    with_one = await get_progress(client, world, household)
    one_neighbour = len(statements)

    for n in range(1, 30):
        await _busy_household(session, author, n)
    statements.clear()
    with_thirty = await get_progress(client, world, household)
    thirty_neighbours = len(statements)

    assert with_thirty == with_one
    assert thirty_neighbours == one_neighbour
    # The caller, the household, snapshots, lines, assessments, visits, measures by status,
    # overdue measures, photo pairs, missing photos; the annual snapshots and their lines, the
    # members; the open case, the open alerts.
    assert one_neighbour == 15, statements


def test_the_documented_example_is_a_valid_document() -> None:
    example = HouseholdProgress.model_json_schema()["examples"][0]
    assert HouseholdProgress.model_validate(example).model_dump(mode="json") == example


async def test_reasons_and_risk_flags_in_chinese_for_zh_cn(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """The app asks in Chinese: details for people in 简体中文, codes and evidence unchanged."""
    household = await make_household(session, village=VILLAGE_A1, status="lifted")
    await seed(session, household, world.users["officer_a1"])
    english = await get_progress(client, world, household)
    response = await client.get(
        f"{API}/households/{household.id}/progress",
        headers={**world.headers("officer_a1"), "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Language"] == "zh-CN"
    assert "Accept-Language" in response.headers["Vary"]
    chinese = response.json()

    def without_details(body: dict[str, Any]) -> dict[str, Any]:
        return {
            **body,
            "exit": {**body["exit"], "reasons": [r["code"] for r in body["exit"]["reasons"]]},
            "risk_flags": [{**f, "detail": None} for f in body["risk_flags"]],
        }

    assert without_details(chinese) == without_details(english)
    assert [r["detail"] for r in chinese["exit"]["reasons"]] == [
        "medical：最近一次评估为 not_ok",
        "housing：最近一次评估为 not_ok",
        "water：走访中从未评估",
    ]
    flags = {f["code"]: f["detail"] for f in chinese["risk_flags"]}
    assert (
        flags["below_monitoring_threshold"] == "2025 年人均纯收入 4000.00 元低于监测标准 7000.00 元"
    )
    assert flags["income_drop"] == "人均纯收入下降 55.6 %（阈值 30 %）：9000.00 → 4000.00 元"
    assert flags["indicator_lost"] == "housing：2025-11-20 为 ok，2026-01-10 为 not_ok"
    assert flags["measure_overdue"] == "1 项帮扶措施已过期限，既未完成也未取消"
    assert flags["photos_missing"] == "2 条记录引用的 2 张照片尚未上传"
    assert flags["visit_overdue"] == "上次走访在 64 天前（走访周期 30 天）"
