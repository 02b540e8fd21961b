"""A varied county for the region progress tests, and its figures computed in plain Python.

`build` adds households (every status and attribute, members current and removed), income
snapshots over several years (ties, baselines, drops), visits with checks (ties, unknowns),
measures, photo references (held or not) and thresholds of several scopes to the `world` of
tests/conftest.py, from a seeded random generator. `expected_progress` then computes the
document GET /regions/{code}/progress must answer from those rows alone, one household at a
time, following the rules as written (nothing shared with the SQL of app/progress/region.py).

The monitoring figures count `Data.cases` and `Data.alerts` (none here: the monitoring tests,
tests/monitoring/test_region_monitoring.py, add some, and ordinary households); `clearable`
takes each case's clearing reasons from `Data.clearing`, which those tests fill with the
clearing rule's Python form (its agreement with the SQL form is tested on its own).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.households.models import Household, Member
from app.photos.models import Photo, PhotoRef
from app.records.models import IncomeSnapshot, Measure, Visit
from app.regions import codes
from app.thresholds.models import PovertyThreshold
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    TOWN_A1,
    TOWN_A2,
    TOWN_B1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_region,
)

NATURAL_A1 = f"{VILLAGE_A1}-01"  # a natural village (group) of village A1
VILLAGE_A4 = "371522102202"  # town A2, population unknown
VILLAGE_A5 = "371522101203"  # town A1, population 0 and no households
NAMES = {
    COUNTY_A: "莘县",
    TOWN_A1: "燕店镇",
    TOWN_A2: "观城镇",
    VILLAGE_A1: "王庄村",
    VILLAGE_A2: "后屯村",
    VILLAGE_A3: "前营村",
    VILLAGE_A4: "东营村",
    VILLAGE_A5: "新庄村",
    COUNTY_B: "冠县",
    TOWN_B1: "清泉街道",
    VILLAGE_B1: "南关村",
}
# Registered rural population of the villages (level 5); natural villages' never counts.
POPULATION = {
    VILLAGE_A1: 1286,
    VILLAGE_A2: 1712,
    VILLAGE_A3: 1594,
    VILLAGE_A4: None,
    VILLAGE_A5: 0,
    VILLAGE_B1: 980,
}
# Households to generate per village code.
HOUSEHOLDS = {
    VILLAGE_A1: 14,
    NATURAL_A1: 5,
    VILLAGE_A2: 10,
    VILLAGE_A3: 10,
    VILLAGE_A4: 6,
    VILLAGE_B1: 5,
}
# Thresholds of the county and of divisions in it (fen), on top of the national rows the
# migration seeds (lines 2010–2020, monitoring threshold from 2021).
THRESHOLDS = [
    (COUNTY_A, 2019, 330_000, None),  # the county's own line over the national 3218
    (VILLAGE_A2, 2020, 420_000, None),
    # Lines after 2020 are typed in by some counties: there is no poverty line after 2020, so
    # they apply to nothing (the thresholds of those rows do).
    (COUNTY_A, 2023, 450_000, 750_000),
    (TOWN_A1, 2021, None, 650_000),
    (TOWN_A2, 2022, None, 800_000),  # 2023: the county's newer row wins again
    (VILLAGE_A2, 2024, 500_000, None),
    (NATURAL_A1, 2023, None, 900_000),  # same year as the county's: the more specific wins
    (VILLAGE_B1, 2022, 999_999, 999_999),  # another county's: applies to nothing here
]
STATUSES = ("new", "in_poverty", "lifted", "lifted_no_support", "returned", "removed")
POOR = ("new", "in_poverty", "returned")
ATTRIBUTES = ("general", "dibao", "tekun", "dibao_tekun")
MEASURE_STATUSES = ("planned", "not_started", "in_progress", "done", "cancelled")
INDICATORS = ("food", "clothing", "education", "medical", "housing", "water")
# Per-capita incomes right at the lines and thresholds in force (equal is not above/below).
EDGES = [295_200, 299_500, 330_000, 400_000, 420_000, 600_000, 650_000, 750_000, 800_000, 900_000]
LABOURS = ("normal", "skilled", "weak", "lost", "none")
CASE_STATUSES = (
    "proposed",
    "village_reviewed",
    "town_reviewed",
    "identified",
    "clearing_village_reviewed",
    "clearing_town_reviewed",
    "cleared",
    "rejected",
)
IDENTIFIED_OPEN = ("identified", "clearing_village_reviewed", "clearing_town_reviewed")
CATEGORIES = ("unstable_lifted", "marginal", "sudden_hardship")
RISK_TYPES = (
    "illness",
    "disability",
    "schooling",
    "disaster",
    "accident",
    "industry_failure",
    "unstable_employment",
    "lack_labour",
    "high_rigid_expenses",
    "other",
)
METHODS = ("assisted", "natural")


@dataclass
class Row:
    """One household and its records, as inserted (attributes: the columns)."""

    household: Any
    members: list[Any] = field(default_factory=list)
    snapshots: list[Any] = field(default_factory=list)
    visits: list[Any] = field(default_factory=list)
    measures: list[Any] = field(default_factory=list)
    photo_shas: list[str] = field(default_factory=list)


@dataclass
class Data:
    rows: list[Row]
    held: set[str]
    thresholds: list[PovertyThreshold]
    now: datetime
    cases: list[Any] = field(default_factory=list)  # MonitoringCase columns
    alerts: list[Any] = field(default_factory=list)  # MonitoringAlert columns
    clearing: dict[uuid.UUID, list[str]] = field(default_factory=dict)  # by household


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _record(rng: random.Random, household: Any, author: uuid.UUID, now: datetime) -> dict[str, Any]:
    return {
        "id": _uuid(rng),
        "household_id": household.id,
        "revision": 1,
        "content_hash": f"{rng.getrandbits(256):064x}",
        "author_id": author,
        "updated_by": author,
        "received_at": now,
        "updated_at": now,
    }


def years_before(today: date, years: int) -> date:
    """The same day `years` earlier (28 February for a 29 February)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return date(today.year - years, 2, 28)


def age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _birth(rng: random.Random, today: date) -> date | None:
    """A birth date, often a day either side of turning 6, 16 or 65; sometimes none."""
    if rng.random() < 0.1:
        return None
    years = rng.choice((6, 16, 65, rng.randrange(0, 90), rng.randrange(20, 60)))
    return years_before(today, years) + timedelta(days=rng.choice((-1, 0, 1, -100, 100)))


def _per_capita(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.35:
        return rng.choice(EDGES) + rng.choice((-1, 0, 1))
    if r < 0.4:
        return rng.randrange(-50_000, 1)  # expenses above income
    return rng.randrange(150_000, 1_100_000)


def _income(per_capita: int) -> dict[str, int]:
    """A household of three earning `per_capita` each: the stored columns that matter."""
    return {
        "wage_income": max(per_capita, 0) * 3,
        "net_income": per_capita * 3,
        "per_capita_income": per_capita,
        "rigid_expenses": 0,
    }


def _last_visit_days_ago(rng: random.Random) -> float:
    # A day away from the 30- and 90-day edges: the request runs a moment after `now`, and the
    # cadence counts calendar days.
    return rng.choice((rng.uniform(0, 28.5), rng.uniform(32, 88.5), rng.uniform(92, 400)))


def _household(rng: random.Random, village: str, n: int, now: datetime) -> Any:
    return SimpleNamespace(
        id=_uuid(rng),
        number=f"{village[:12]}{village[13:]:0>2}{n:04d}",
        village_code=village,
        head_name=f"户主{n}",
        attribute=rng.choice(ATTRIBUTES),
        status=rng.choice(STATUSES),
        origin="registered",
        main_cause="illness",
        identified_year=2014,
        created_at=now,
        updated_at=now,
    )


def _records(rng: random.Random, row: Row, *, author: uuid.UUID, now: datetime) -> None:
    household = row.household
    today = now.astimezone(UTC).date()
    for i in range(rng.randrange(0, 6)):
        removed = rng.random() < 0.25
        row.members.append(
            SimpleNamespace(
                id=_uuid(rng),
                household_id=household.id,
                name=f"成员{i}",
                relation="head" if i == 0 else "child",
                birth_date=_birth(rng, today),
                labour=rng.choice(LABOURS),
                in_school=rng.random() < 0.85,
                medical_insurance=rng.random() < 0.9,
                removed_at=now - timedelta(days=rng.randrange(1, 900)) if removed else None,
                removed_reason="death" if removed else None,
                created_at=now,
                updated_at=now,
            )
        )
    for _ in range(rng.choice((0, 1, 2, 2, 3, 4, 5))):
        if row.snapshots and rng.random() < 0.2:
            # Same year and time as another: the id decides which is the later.
            twin = rng.choice(row.snapshots)
            year, recorded_at = twin.year, twin.recorded_at
        else:
            year = rng.randrange(2017, 2027)
            recorded_at = datetime(year, rng.randrange(1, 13), rng.randrange(1, 28), 8, tzinfo=UTC)
        row.snapshots.append(
            SimpleNamespace(
                **_record(rng, household, author, now),
                year=year,
                kind=rng.choice(("baseline", "annual", "annual", "verification", "monitoring")),
                household_size=3,
                recorded_at=recorded_at,
                **_income(_per_capita(rng)),
            )
        )
    good = rng.random() < 0.4  # every indicator ok at each visit, but for the odd exception
    last = now - timedelta(days=_last_visit_days_ago(rng))
    for i in range(rng.choice((0, 1, 2, 3, 4, 6))):
        if i and rng.random() < 0.15:
            visited_at = rng.choice(row.visits).visited_at  # a tie: the id decides
        else:
            visited_at = last - timedelta(days=0 if i == 0 else rng.uniform(1, 300))
        checks = {
            f"check_{name}": "ok"
            if good
            else rng.choices(("ok", "not_ok", "unknown"), (6, 2, 2))[0]
            for name in INDICATORS
        }
        if good and rng.random() < 0.2:
            checks[f"check_{rng.choice(INDICATORS)}"] = rng.choice(("not_ok", "unknown"))
        row.visits.append(
            SimpleNamespace(
                **_record(rng, household, author, now),
                visited_at=visited_at,
                mode="in_home",
                **checks,
            )
        )
    today = now.date()
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        due = rng.choice((None, rng.randrange(-300, -1), rng.randrange(2, 300)))
        funds = rng.choice((None, rng.randrange(0, 5_000_000)))
        row.measures.append(
            SimpleNamespace(
                **_record(rng, household, author, now),
                category="industry",
                title="产业帮扶",
                status=rng.choice(MEASURE_STATUSES),
                funds=funds,
                funds_spent=None if funds is None else rng.randrange(0, funds + 1),
                due_date=None if due is None else today + timedelta(days=due),
            )
        )
    row.photo_shas = [f"{rng.getrandbits(256):064x}" for _ in range(rng.choice((0, 0, 1, 2)))]


# Households whose figures hang on one rule each: (village, status, [(year, per capita)…]),
# visited 5 days ago with every indicator ok.
SCENARIOS = [
    # Exit: the latest income above the line of its year and the two latest annual years' too.
    # 2020: the village's own line (4200); 2019: the county's (3300), over the national 3218.
    (VILLAGE_A2, "in_poverty", [(2019, 400_000), (2020, 420_000)]),  # not above 4200
    (VILLAGE_A2, "in_poverty", [(2019, 400_000), (2020, 420_001)]),  # eligible
    (VILLAGE_A1, "new", [(2019, 330_000), (2020, 500_000)]),  # 2019 not above: not stable
    (VILLAGE_A1, "returned", [(2018, 299_501), (2019, 330_001)]),  # eligible
    (VILLAGE_A3, "returned", [(2020, 900_000)]),  # one annual year only: not stable
    # No line after 2020 (the county's and the village's rows of 2023/2024 are ignored).
    (VILLAGE_A2, "in_poverty", [(2023, 480_000), (2024, 480_000)]),  # eligible
    (VILLAGE_A1, "lifted", [(2019, 500_000), (2020, 500_000)]),  # meets it, but not poor
    # Between the national monitoring threshold (6000) and the town's of 2022 (8000).
    (VILLAGE_A3, "lifted", [(2022, 700_000)]),
    (VILLAGE_A4, "lifted_no_support", [(2023, 770_000)]),  # 2023: the county's 7500 again
    # The group's 2023 threshold (9000) over the county's (7500) and town A1's of 2021 (6500).
    (NATURAL_A1, "lifted", [(2023, 800_000)]),
    (VILLAGE_A1, "lifted", [(2023, 700_000)]),  # the village itself: the county's
    # A fall of exactly 30% is no drop; a fen more is.
    (VILLAGE_A1, "lifted", [(2025, 1_000_000), (2026, 700_000)]),
    (VILLAGE_A3, "lifted", [(2025, 1_000_000), (2026, 699_999)]),
    (VILLAGE_A3, "lifted", [(2025, 0), (2026, -100)]),  # no previous income to fall from
]


def _scenario(
    rng: random.Random,
    village: str,
    n: int,
    status: str,
    incomes: list[tuple[int, int]],
    *,
    author: uuid.UUID,
    now: datetime,
) -> Row:
    row = Row(_household(rng, village, n, now))
    row.household.status = status
    for year, per_capita in incomes:
        row.snapshots.append(
            SimpleNamespace(
                **_record(rng, row.household, author, now),
                year=year,
                kind="annual",
                household_size=3,
                recorded_at=datetime(year, 12, 1, tzinfo=UTC),
                **_income(per_capita),
            )
        )
    row.visits.append(
        SimpleNamespace(
            **_record(rng, row.household, author, now),
            visited_at=now - timedelta(days=5),
            mode="in_home",
            **{f"check_{name}": "ok" for name in INDICATORS},
        )
    )
    return row


async def build(session: AsyncSession, world: World, *, seed: int, now: datetime) -> Data:
    """Add the generated households and records (and regions, thresholds) to the world.

    Rows go in as bulk INSERTs of the very values the figures are then computed from; the sync
    change log is not kept for them (nothing here reads it).
    """
    rng = random.Random(seed)
    author = world.users["admin_a"].id
    await make_region(session, NATURAL_A1, "一组", population=100)
    await make_region(session, VILLAGE_A4, NAMES[VILLAGE_A4], population=POPULATION[VILLAGE_A4])
    await make_region(session, VILLAGE_A5, NAMES[VILLAGE_A5], population=POPULATION[VILLAGE_A5])
    session.add_all(
        PovertyThreshold(scope=scope, year=year, poverty_line=line, monitoring_threshold=mon)
        for scope, year, line, mon in THRESHOLDS
    )
    await session.flush()

    rows: list[Row] = []
    for household in world.households.values():  # the world's own, with their members
        members = await session.scalars(
            select(Member).where(col(Member.household_id) == household.id)
        )
        rows.append(Row(household, members=list(members)))
    generated: list[Row] = []
    for village, count in HOUSEHOLDS.items():
        for n in range(count):
            row = Row(_household(rng, village, n, now))
            _records(rng, row, author=author, now=now)
            generated.append(row)
    for n, (village, status, incomes) in enumerate(SCENARIOS, start=100):
        generated.append(_scenario(rng, village, n, status, incomes, author=author, now=now))
    rows += generated
    refs: list[dict[str, Any]] = []
    held: set[str] = set()
    for row in rows:
        for sha in row.photo_shas:
            refs.append(
                {
                    "sha256": sha,
                    "record_type": "visit",
                    "record_id": _uuid(rng),
                    "household_id": row.household.id,
                    "author_id": author,
                    "tag": "evidence",
                }
            )
            if rng.random() < 0.5:
                held.add(sha)
    photos = [{"sha256": sha, "size_bytes": 1000, "content_type": "image/jpeg"} for sha in held]
    for table, records in (
        (Household, [vars(row.household) for row in generated]),
        (Member, [vars(m) for row in generated for m in row.members]),
        (IncomeSnapshot, [vars(s) for row in rows for s in row.snapshots]),
        (Visit, [vars(v) for row in rows for v in row.visits]),
        (Measure, [vars(m) for row in rows for m in row.measures]),
        (PhotoRef, refs),
        (Photo, photos),
    ):
        if records:
            await session.execute(insert(table.__table__), records)
    thresholds = list((await session.scalars(select(PovertyThreshold))).all())
    return Data(rows=rows, held=held, thresholds=thresholds, now=now)


# --- the figures, household by household -----------------------------------------------------


def resolve_thresholds(
    thresholds: list[PovertyThreshold], village: str, year: int
) -> tuple[int | None, int | None]:
    """The line and monitoring threshold for a village and year: for each, the row of the
    latest year not after `year`; within that year, the most specific scope."""
    chain = ["national", *codes.ancestors_of(village), village]
    out: list[int | None] = []
    for figure in ("poverty_line", "monitoring_threshold"):
        found = [
            (row.year, chain.index(row.scope), getattr(row, figure))
            for row in thresholds
            if row.scope in chain and row.year <= year and getattr(row, figure) is not None
        ]
        out.append(max(found)[2] if found else None)
    if year > 2020:  # there is no poverty line after 2020
        out[0] = None
    return out[0], out[1]


def _latest_assessments(visits: list[Any]) -> tuple[dict[str, str], dict[str, bool]]:
    """Per indicator: the value of its latest assessment, and whether it was ever ok."""
    newest_first = sorted(visits, key=lambda v: (v.visited_at, v.id), reverse=True)
    latest: dict[str, str] = {}
    ever_ok: dict[str, bool] = {}
    for name in INDICATORS:
        values = [getattr(v, f"check_{name}") for v in newest_first]
        known = [value for value in values if value != "unknown"]
        if known:
            latest[name] = known[0]
        ever_ok[name] = "ok" in known
    return latest, ever_ok


def _money(fen: int) -> str:
    yuan = (Decimal(fen) / 100).quantize(Decimal("0.01"))
    return f"{yuan + 0:.2f}"


FLAGS = (
    "income_drop",
    "below_monitoring_threshold",
    "indicator_lost",
    "measure_overdue",
    "visit_overdue",
    "photos_missing",
)


@dataclass
class Facts:
    """One household's progress facts, by the rules as written (the export lists these)."""

    latest: Any = None  # the latest snapshot
    baseline: Any = None
    line: int | None = None  # of the latest snapshot's year
    monitoring: int | None = None
    assessments: dict[str, str] = field(default_factory=dict)  # latest not unknown, per indicator
    eligible: bool = False  # the exit rule, whatever the status
    exit_reasons: set[str] = field(default_factory=set)  # its reason codes
    no_labour: bool = False
    last_visit: datetime | None = None
    flags: set[str] = field(default_factory=set)


def household_facts(row: Row, data: Data) -> Facts:
    now = data.now
    today = now.astimezone(UTC).date()
    household = row.household
    facts = Facts()
    facts.assessments, ever_ok = _latest_assessments(row.visits)
    if row.snapshots:
        by_latest = sorted(row.snapshots, key=lambda s: (s.year, s.recorded_at, s.id), reverse=True)
        latest = facts.latest = by_latest[0]
        baselines = [s for s in row.snapshots if s.kind == "baseline"] or row.snapshots
        facts.baseline = min(baselines, key=lambda s: (s.year, s.recorded_at, s.id))
        facts.line, facts.monitoring = resolve_thresholds(
            data.thresholds, household.village_code, latest.year
        )
        if facts.line is not None and latest.per_capita_income <= facts.line:
            facts.exit_reasons.add("income_below_line")
        if len(by_latest) > 1:
            previous = by_latest[1].per_capita_income
            fall = previous - latest.per_capita_income
            if previous > 0 and Fraction(fall, previous) > Fraction(3, 10):
                facts.flags.add("income_drop")
        if (
            household.status in ("lifted", "lifted_no_support")
            and facts.monitoring is not None
            and latest.per_capita_income < facts.monitoring
        ):
            facts.flags.add("below_monitoring_threshold")
    else:
        facts.exit_reasons.add("no_snapshot")
    # The latest annual snapshot of each of the two latest years with one, above its line
    # (an unknown line, as after 2020, is no reason).
    annual: dict[int, Any] = {}
    for snap in sorted(row.snapshots, key=lambda s: (s.recorded_at, s.id)):
        if snap.kind == "annual":
            annual[snap.year] = snap  # the later one of a year wins
    two = [annual[year] for year in sorted(annual, reverse=True)[:2]]
    if len(two) < 2 or any(
        (line := resolve_thresholds(data.thresholds, household.village_code, snap.year)[0])
        is not None
        and snap.per_capita_income <= line
        for snap in two
    ):
        facts.exit_reasons.add("income_not_stable")
    for name in INDICATORS:
        state = facts.assessments.get(name)
        if state is None:
            facts.exit_reasons.add("indicator_unknown")
        elif state == "not_ok":
            facts.exit_reasons.add("indicator_not_ok")
    current = [m for m in row.members if m.removed_at is None]
    ages = [None if m.birth_date is None else age(m.birth_date, today) for m in current]
    pairs = list(zip(current, ages, strict=True))
    if any(a is not None and 6 <= a <= 15 and not m.in_school for m, a in pairs):
        facts.exit_reasons.add("education_not_secured")
    if any(not m.medical_insurance for m in current):
        facts.exit_reasons.add("medical_not_secured")
    facts.no_labour = not any(
        a is not None and 16 <= a <= 64 and m.labour in ("normal", "skilled") for m, a in pairs
    )
    facts.eligible = not facts.exit_reasons
    if any(facts.assessments.get(name) == "not_ok" and ever_ok[name] for name in INDICATORS):
        facts.flags.add("indicator_lost")
    last = facts.last_visit = max((v.visited_at for v in row.visits), default=None)
    if last is None or (today - last.astimezone(UTC).date()).days > 30:
        facts.flags.add("visit_overdue")
    if any(overdue(m, today) for m in row.measures):
        facts.flags.add("measure_overdue")
    if any(sha not in data.held for sha in row.photo_shas):
        facts.flags.add("photos_missing")
    return facts


def overdue(measure: Any, today: date) -> bool:
    return (
        measure.due_date is not None
        and measure.due_date < today
        and measure.status not in ("done", "cancelled")
    )


def _figures(rows: list[Row], data: Data, population: int | None) -> dict[str, Any]:
    now = data.now
    counted = [row for row in rows if row.household.status != "removed"]
    flags = dict.fromkeys(FLAGS, 0)
    people = eligible = with_income = change = visited_30 = visited_90 = 0
    no_labour: set[uuid.UUID] = set()
    planned = spent = 0
    measures = dict.fromkeys(MEASURE_STATUSES, 0)
    for row in counted:
        household = row.household
        if household.status in POOR:
            people += sum(1 for m in row.members if m.removed_at is None)
        facts = household_facts(row, data)
        if facts.latest is not None:
            with_income += 1
            change += facts.latest.per_capita_income - facts.baseline.per_capita_income
        eligible += facts.eligible and household.status in POOR
        if facts.no_labour:
            no_labour.add(household.id)
        for flag in facts.flags:
            flags[flag] += 1
        last = facts.last_visit
        if last is not None and last >= now - timedelta(days=30):
            visited_30 += 1
        if last is not None and last >= now - timedelta(days=90):
            visited_90 += 1
        for m in row.measures:
            measures[m.status] += 1
            planned += m.funds or 0
            spent += m.funds_spent or 0

    total = len(counted)
    incidence = people / population if population else None
    average = (
        _money(int((Decimal(change) / with_income).quantize(Decimal(1), ROUND_HALF_UP)))
        if with_income
        else None
    )
    return {
        "households_total": total,
        "households_by_origin": {
            o: sum(1 for row in counted if row.household.origin == o)
            for o in ("registered", "ordinary")
        },
        "households_by_status": {
            s: sum(1 for row in counted if row.household.status == s) for s in STATUSES
        },
        "households_by_attribute": {
            a: sum(1 for row in counted if row.household.attribute == a) for a in ATTRIBUTES
        },
        "people_in_poverty": people,
        "rural_population": population,
        "poverty_incidence": incidence,
        "incidence_threshold": 0.02,
        "below_threshold": None if incidence is None else incidence < 0.02,
        "exit_eligible": eligible,
        "households_with_income": with_income,
        "income_change_avg": average,
        "measures": {
            "total": sum(measures.values()),
            "by_status": measures,
            "funds_planned": _money(planned),
            "funds_spent": _money(spent),
        },
        "visit_coverage": {
            "visited_30d": visited_30 / total if total else None,
            "visited_90d": visited_90 / total if total else None,
            "households_visited_30d": visited_30,
            "households_visited_90d": visited_90,
        },
        "risk_flags": flags,
        "monitoring": _monitoring({row.household.id for row in counted}, no_labour, data),
    }


def _monitoring(
    households: set[uuid.UUID], no_labour: set[uuid.UUID], data: Data
) -> dict[str, Any]:
    """The monitoring figures of the cases and alerts of `households`."""
    year = data.now.astimezone(UTC).year
    cases = [c for c in data.cases if c.household_id in households]
    open_ = [c for c in cases if c.status not in ("cleared", "rejected")]
    identified = [c for c in open_ if c.status in IDENTIFIED_OPEN]
    return {
        "open_cases": len(open_),
        "cases_by_category": {
            cat: sum(1 for c in open_ if c.category == cat) for cat in CATEGORIES
        },
        "cases_by_status": {st: sum(1 for c in cases if c.status == st) for st in CASE_STATUSES},
        "cases_by_risk_type": {r: sum(1 for c in open_ if r in c.risk_types) for r in RISK_TYPES},
        "identified_this_year": sum(
            1 for c in cases if c.identified_on is not None and c.identified_on.year == year
        ),
        "cleared_this_year": {
            method: sum(
                1
                for c in cases
                if c.status == "cleared"
                and c.cleared_on is not None
                and c.cleared_on.year == year
                and c.clearing_method == method
            )
            for method in METHODS
        },
        "open_alerts": sum(
            1 for a in data.alerts if a.household_id in households and a.status == "open"
        ),
        "under_guarantees": sum(1 for c in identified if c.household_id in no_labour),
        "clearable": sum(1 for c in identified if not data.clearing[c.household_id]),
    }


def _population(region: str) -> int | None:
    known = [
        population
        for village, population in POPULATION.items()
        if codes.is_within(village, region) and population is not None
    ]
    return sum(known) if known else None


def _identity(code: str) -> dict[str, Any]:
    level = codes.level_of(code)
    return {"code": code, "name": NAMES.get(code), "level": int(level), "level_name": level.name}


def expected_progress(data: Data, region: str, *, caller_regions: Iterable[str]) -> dict[str, Any]:
    """The whole document for `region` as seen by a caller of `caller_regions` (without as_of)."""
    own = list(caller_regions)
    visible = [
        row
        for row in data.rows
        if codes.is_within(row.household.village_code, region)
        and any(codes.is_within(row.household.village_code, mine) for mine in own)
    ]
    level = codes.level_of(region)
    children: list[dict[str, Any]] = []
    if level in (codes.Level.county, codes.Level.town):
        child_level = codes.Level(level + 1)
        child_codes = sorted(
            code
            for code in NAMES
            if codes.is_within(code, region) and codes.level_of(code) is child_level
        )
        for child in child_codes:
            rows = [row for row in visible if codes.is_within(row.household.village_code, child)]
            children.append({**_identity(child), **_figures(rows, data, _population(child))})
    return {
        **_identity(region),
        **_figures(visible, data, _population(region)),
        "children": children,
    }
