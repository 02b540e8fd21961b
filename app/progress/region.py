"""A region's standing (village, town or county), computed in grouped SQL.

Every figure is a count or a sum over households, so one grouped query answers the region and
all its children at once (GROUP BY the child's code prefix): the region is the sum of its
children. Per household, window functions number the snapshots and the visits; conditional
aggregates then pick the latest snapshot, the one before it, the baseline, and each indicator's
latest assessment. Nothing is loaded row by row into Python.

The per-household rules (orders, dates in UTC, what is overdue, lost or dropped) are those of
`app.progress.household`, which states them; its ORDER BY and condition helpers are reused here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field, fields
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.principal import Principal, within_regions
from app.core.base import UTCDateTime, utcnow
from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.core.money import divide_half_up, fen_str
from app.households.models import Household, Member
from app.households.vocabulary import POOR_STATUSES, Attribute, Relation, Status
from app.photos.models import PhotoRef
from app.photos.refs import not_held
from app.progress import household as rules
from app.progress.region_schemas import (
    MeasureFigures,
    RegionProgress,
    RegionProgressChild,
    RiskFlagCounts,
    VisitCoverage,
)
from app.records.models import IncomeSnapshot, Measure, Visit
from app.records.vocabulary import INDICATORS, Check, MeasureStatus
from app.regions import codes
from app.regions import service as regions_service
from app.regions.errors import RegionNotFound
from app.regions.models import Region
from app.thresholds.models import PovertyThreshold
from app.thresholds.service import NATIONAL, effective_thresholds

# The region levels progress is reported for, and the level of their children (a table's rows).
CHILD_LEVEL: dict[codes.Level, codes.Level | None] = {
    codes.Level.county: codes.Level.town,
    codes.Level.town: codes.Level.village,
    codes.Level.village: None,
}
# Visit coverage: households visited at or after now minus each of these many days.
COVERAGE_DAYS = (30, 90)
# The household's own columns in the export's rows (after household_id, status, attribute).
HOUSEHOLD_DETAILS = (
    "household_id",
    "status",
    "attribute",
    "number",
    "village_code",
    "group_name",
    "head_name",
    "phone",
    "main_cause",
    "identified_year",
    "exit_year",
)


# --- the figures of one region, as sums the children add up to -------------------------------


@dataclass
class _Sums:
    """Additive figures of a set of households: a child's row, or the sum of the children."""

    households_total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_attribute: dict[str, int] = field(default_factory=dict)
    people_in_poverty: int = 0
    rural_population: int | None = None
    exit_eligible: int = 0
    households_with_income: int = 0
    income_change_fen: int = 0
    measures_by_status: dict[str, int] = field(default_factory=dict)
    funds_planned_fen: int = 0
    funds_spent_fen: int = 0
    visited_30d: int = 0
    visited_90d: int = 0
    flags: dict[str, int] = field(default_factory=dict)

    def add(self, other: _Sums) -> None:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
            elif f.name == "rural_population":
                if theirs is not None:
                    self.rural_population = (mine or 0) + theirs
            else:
                setattr(self, f.name, mine + theirs)


FLAGS = tuple(RiskFlagCounts.model_fields)


def _figures(sums: _Sums, *, incidence_threshold: float) -> dict[str, Any]:
    """The public figures (RegionFigures' fields) from the sums."""
    total = sums.households_total
    population = sums.rural_population or None
    incidence = sums.people_in_poverty / population if population else None
    measures_total = sum(sums.measures_by_status.values())
    return {
        "households_total": total,
        "households_by_status": {s: sums.by_status.get(s, 0) for s in Status},
        "households_by_attribute": {a: sums.by_attribute.get(a, 0) for a in Attribute},
        "people_in_poverty": sums.people_in_poverty,
        "rural_population": sums.rural_population,
        "poverty_incidence": incidence,
        "incidence_threshold": incidence_threshold,
        "below_threshold": None if incidence is None else incidence < incidence_threshold,
        "exit_eligible": sums.exit_eligible,
        "households_with_income": sums.households_with_income,
        "income_change_avg": (
            fen_str(divide_half_up(sums.income_change_fen, sums.households_with_income))
            if sums.households_with_income
            else None
        ),
        "measures": MeasureFigures(
            total=measures_total,
            by_status={s: sums.measures_by_status.get(s, 0) for s in MeasureStatus},
            funds_planned=fen_str(sums.funds_planned_fen),
            funds_spent=fen_str(sums.funds_spent_fen),
        ),
        "visit_coverage": VisitCoverage(
            visited_30d=sums.visited_30d / total if total else None,
            visited_90d=sums.visited_90d / total if total else None,
            households_visited_30d=sums.visited_30d,
            households_visited_90d=sums.visited_90d,
        ),
        "risk_flags": RiskFlagCounts(**{f: sums.flags.get(f, 0) for f in FLAGS}),
    }


# --- the SQL ----------------------------------------------------------------------------------


def _child_key(level: codes.Level, code: str, column: Any) -> ColumnElement[str]:
    """The code of the child region a division code (household village, region) lies in."""
    text = type_coerce(column, String)
    if level is codes.Level.county:
        return type_coerce(func.substr(text, 1, 9), String) + "000"
    if level is codes.Level.town:
        return type_coerce(func.substr(text, 1, 12), String)
    return literal(code, String)


@dataclass(frozen=True)
class _Step:
    """Thresholds in force for `key`'s villages from `from_year` up to `to_year` (excluded)."""

    key: str
    from_year: int
    to_year: int | None
    poverty_line: int | None
    monitoring_threshold: int | None

    @property
    def figures(self) -> tuple[int | None, int | None]:
        return self.poverty_line, self.monitoring_threshold


async def _threshold_steps(session: AsyncSession, *, code: str) -> tuple[list[str], list[_Step]]:
    """Which thresholds apply to each village of the region, by year, as a step function.

    Most villages share the figures of the region's own chain (national … county … region);
    a division inside the region with rows of its own (`special`) gives its villages theirs. A
    village takes the figures of the most specific special division it lies in, else of the
    region: `effective_thresholds` of that division gives the same answer as of the village,
    since nothing between them has rows. The figures only change in years that have rows.
    """
    scope = col(PovertyThreshold.scope)
    rows = (
        await session.execute(
            select(scope, col(PovertyThreshold.year))
            .where(
                or_(
                    scope.in_([NATIONAL, *codes.ancestors_of(code)]),
                    within_regions([code], scope),
                )
            )
            .distinct()
        )
    ).all()
    years = sorted({year for _, year in rows})
    # Deepest first: a village's key is the first special division that contains it.
    special = sorted(
        {s for s, _ in rows if s not in (NATIONAL, code) and codes.is_within(s, code)},
        key=lambda s: (-codes.level_of(s), s),
    )
    steps: list[_Step] = []
    for key in [code, *special]:
        effective = await effective_thresholds(session, region_code=key, years=years)
        for i, year in enumerate(years):
            following = years[i + 1] if i + 1 < len(years) else None
            figures = (effective[year].poverty_line, effective[year].monitoring_threshold)
            last = steps[-1] if steps else None
            if last is not None and last.key == key and last.figures == figures:
                steps[-1] = _Step(key, last.from_year, following, *figures)  # the same: extend
            else:
                steps.append(_Step(key, year, following, *figures))
    return special, steps


def _threshold_key(code: str, special: Sequence[str], village: Any) -> ColumnElement[str]:
    if not special:
        return literal(code, String)
    return case(
        *[(within_regions([s], village), literal(s, String)) for s in special],
        else_=literal(code, String),
    )


def _steps_cte(steps: Sequence[_Step]) -> CTE:
    """The step function as a small table (a UNION ALL: SQLite has no VALUES with names)."""

    def row(values: tuple[Any, ...]) -> Select[str, int, int, int, int]:
        key, from_year, to_year, line, threshold = values
        return select(
            cast(literal(key, String), String).label("key"),
            cast(literal(from_year, Integer), Integer).label("from_year"),
            cast(literal(to_year, Integer), Integer).label("to_year"),
            cast(literal(line, BigInteger), BigInteger).label("poverty_line"),
            cast(literal(threshold, BigInteger), BigInteger).label("monitoring_threshold"),
        )

    if not steps:  # no thresholds at all: an empty table of the same columns
        return row((None,) * 5).where(false()).cte("thresholds")
    selects = [row(astuple(step)) for step in steps]
    if len(selects) == 1:
        return selects[0].cte("thresholds")
    table: CompoundSelect[str, int, int, int, int] = union_all(*selects)
    return table.cte("thresholds")


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _share_as_fraction(share: float) -> tuple[int, int]:
    """A configured share (0.30) as an exact fraction (3, 10): the comparison stays in integers."""
    fraction = Fraction(Decimal(str(share)))
    return fraction.numerator, fraction.denominator


@dataclass(frozen=True)
class _PerHousehold:
    """Per counted household: its row (`hh`), the FROM joining its facts, and the rules as SQL.

    The region figures sum these conditions per child region; the export lists them per
    household. Both therefore apply exactly the same rules.
    """

    hh: Any  # the household's columns: household_id, status, attribute, child, threshold_key …
    joined: Any
    snapshots: Any  # latest_year, latest, previous, baseline, baseline_year
    visits: Any  # last_visited_at, visits, recent_visits, ok_<indicator>, not_ok_<indicator>
    measures: Any  # measures_<status>, funds, funds_spent, overdue
    people: Any  # people: current members of a poor household
    members: Any | None  # detailed only: size (current members), head_id_number
    thresholds: Any  # poverty_line, monitoring_threshold of the latest snapshot's year
    exit_eligible: ColumnElement[bool]
    visited: dict[int, ColumnElement[bool]]  # by COVERAGE_DAYS
    flags: dict[str, ColumnElement[bool]]  # by FLAGS


def _per_household(
    *,
    level: codes.Level,
    code: str,
    principal: Principal,
    special: Sequence[str],
    steps: Sequence[_Step],
    now: datetime,
    detailed: bool = False,
    only: Sequence[uuid.UUID] | None = None,
) -> _PerHousehold:
    """The per-household query parts; `detailed` adds the columns of the export's rows, `only`
    restricts them to some of the counted households (a page of them)."""
    settings = get_settings()
    today = now.astimezone(UTC).date()  # as the household progress: dates in UTC
    village = col(Household.village_code)
    counted_where = _counted(code, principal)
    if only is not None:
        counted_where += (col(Household.id).in_(only),)
    hh = (
        select(
            col(Household.id).label("household_id"),
            col(Household.status).label("status"),
            col(Household.attribute).label("attribute"),
            _child_key(level, code, village).label("child"),
            _threshold_key(code, special, village).label("threshold_key"),
            *(
                [col(getattr(Household, name)).label(name) for name in HOUSEHOLD_DETAILS[3:]]
                if detailed
                else []
            ),
        )
        .where(*counted_where)
        .subquery("hh")
    )
    # Each per-household subquery restricts itself to the counted households by the table
    # itself, not by `hh`: PostgreSQL then estimates from the table's statistics (a CTE has
    # none, and its misestimates multiply across the joins).
    counted_select = select(col(Household.id)).where(*counted_where)
    # A page of the export: its households are counted ones already (the page query chose
    # them), and a list of ids lets the planner look up exactly those in each table's index.
    counted: Any = counted_select if only is None else list(only)

    # Snapshots: rn 1 is the latest, rn 2 the one before; rb 1 is the baseline (the orders of
    # the household progress, whose rules these are).
    snapshot_household = col(IncomeSnapshot.household_id)
    ranked_snapshots = (
        select(
            snapshot_household.label("household_id"),
            col(IncomeSnapshot.year).label("year"),
            col(IncomeSnapshot.per_capita_income).label("per_capita"),
            func.row_number()
            .over(partition_by=snapshot_household, order_by=rules.latest_snapshot_order())
            .label("rn"),
            func.row_number()
            .over(partition_by=snapshot_household, order_by=rules.baseline_order())
            .label("rb"),
        )
        .where(snapshot_household.in_(counted))
        .subquery("ranked_snapshots")
    )
    rs = ranked_snapshots.c
    snapshots = (
        select(
            rs.household_id,
            func.max(case((rs.rn == 1, rs.year))).label("latest_year"),
            func.max(case((rs.rn == 1, rs.per_capita))).label("latest"),
            func.max(case((rs.rn == 2, rs.per_capita))).label("previous"),
            func.max(case((rs.rb == 1, rs.per_capita))).label("baseline"),
            *([func.max(case((rs.rb == 1, rs.year))).label("baseline_year")] if detailed else []),
        )
        .where(or_(rs.rn <= 2, rs.rb == 1))
        .group_by(rs.household_id)
        .subquery("snapshots")
    )

    # Visits, newest first (visited_at, id): an indicator's latest assessment is `ok` when its
    # newest `ok` comes before its newest `not_ok` in that order (`unknown` is no assessment).
    visit_household = col(Visit.household_id)
    ranked_visits = (
        select(
            visit_household.label("household_id"),
            col(Visit.visited_at).label("visited_at"),
            *[col(getattr(Visit, f"check_{name}")).label(name) for name in INDICATORS],
            func.row_number()
            .over(
                partition_by=visit_household,
                order_by=rules.visit_order(),
            )
            .label("rn"),
        )
        .where(visit_household.in_(counted))
        .subquery("ranked_visits")
    )
    rv = ranked_visits.c
    recent_since = literal(now - timedelta(days=rules.RECENT_VISIT_DAYS), UTCDateTime)
    visits = (
        select(
            rv.household_id,
            func.max(rv.visited_at).label("last_visited_at"),
            *[
                func.min(case((rv[name] == check.value, rv.rn))).label(f"{check}_{name}")
                for name in INDICATORS
                for check in (Check.ok, Check.not_ok)
            ],
            *(
                [
                    func.count().label("visits"),
                    _count(rv.visited_at >= recent_since).label("recent_visits"),
                ]
                if detailed
                else []
            ),
        )
        .group_by(rv.household_id)
        .subquery("visits")
    )

    measure_status = col(Measure.status)
    measures = (
        select(
            col(Measure.household_id).label("household_id"),
            *[_count(measure_status == s.value).label(f"measures_{s}") for s in MeasureStatus],
            func.sum(col(Measure.funds)).label("funds"),
            func.sum(col(Measure.funds_spent)).label("funds_spent"),
            _count(rules.measure_overdue(today)).label("overdue"),
        )
        .where(col(Measure.household_id).in_(counted))
        .group_by(col(Measure.household_id))
        .subquery("measures")
    )

    people = (
        select(col(Member.household_id).label("household_id"), func.count().label("people"))
        .where(
            col(Member.removed_at).is_(None),
            col(Member.household_id).in_(
                counted_select.where(
                    col(Household.status).in_(sorted(s.value for s in POOR_STATUSES))
                )
            ),
        )
        .group_by(col(Member.household_id))
        .subquery("people")
    )
    members = (
        select(
            col(Member.household_id).label("household_id"),
            func.count().label("size"),
            func.min(
                case((col(Member.relation) == Relation.head.value, col(Member.id_number)))
            ).label("head_id_number"),
        )
        .where(col(Member.removed_at).is_(None), col(Member.household_id).in_(counted))
        .group_by(col(Member.household_id))
        .subquery("members")
        if detailed
        else None
    )

    photos_missing = (
        select(col(PhotoRef.household_id).label("household_id"))
        .where(col(PhotoRef.household_id).in_(counted), not_held())
        .group_by(col(PhotoRef.household_id))  # not DISTINCT: SQLite then indexes it for the join
        .subquery("photos_missing")
    )

    th = _steps_cte(steps)
    s, v, m = snapshots.c, visits.c, measures.c
    joined = (
        hh.outerjoin(snapshots, s.household_id == hh.c.household_id)
        .outerjoin(visits, v.household_id == hh.c.household_id)
        .outerjoin(measures, m.household_id == hh.c.household_id)
        .outerjoin(people, people.c.household_id == hh.c.household_id)
        .outerjoin(photos_missing, photos_missing.c.household_id == hh.c.household_id)
        .outerjoin(
            th,
            and_(
                th.c.key == hh.c.threshold_key,
                s.latest_year >= th.c.from_year,
                or_(th.c.to_year.is_(None), s.latest_year < th.c.to_year),
            ),
        )
    )
    if members is not None:
        joined = joined.outerjoin(members, members.c.household_id == hh.c.household_id)

    def latest_ok(name: str) -> ColumnElement[bool]:
        ok, not_ok = v[f"ok_{name}"], v[f"not_ok_{name}"]
        return and_(ok.is_not(None), or_(not_ok.is_(None), ok < not_ok))

    def lost(name: str) -> ColumnElement[bool]:
        # Latest is not_ok and an ok exists (necessarily earlier); NULL (no such) is not true.
        return v[f"not_ok_{name}"] < v[f"ok_{name}"]

    numerator, denominator = _share_as_fraction(settings.income_drop_share)
    since = {days: literal(now - timedelta(days=days), UTCDateTime) for days in COVERAGE_DAYS}
    # rules.visit_overdue counts calendar days (UTC): more than the cadence since the last
    # visit's date is a last visit before midnight of (today − cadence).
    overdue_before = literal(
        datetime.combine(today - timedelta(days=settings.visit_cadence_days), time(), UTC),
        UTCDateTime,
    )
    flags: dict[str, ColumnElement[bool]] = {
        "income_drop": and_(
            s.previous > 0,
            (s.previous - s.latest) * denominator > s.previous * numerator,
        ),
        "below_monitoring_threshold": and_(
            hh.c.status.in_([st.value for st in rules.LIFTED_STATUSES]),
            th.c.monitoring_threshold.is_not(None),
            s.latest < th.c.monitoring_threshold,
        ),
        "indicator_lost": or_(*[lost(name) for name in INDICATORS]),
        "measure_overdue": m.overdue > 0,
        "visit_overdue": or_(v.last_visited_at.is_(None), v.last_visited_at < overdue_before),
        "photos_missing": photos_missing.c.household_id.is_not(None),
    }
    return _PerHousehold(
        hh=hh.c,
        joined=joined,
        snapshots=s,
        visits=v,
        measures=m,
        people=people.c,
        members=None if members is None else members.c,
        thresholds=th.c,
        exit_eligible=and_(
            s.latest.is_not(None),
            # As the household progress: an unknown line blocks nothing.
            or_(th.c.poverty_line.is_(None), s.latest > th.c.poverty_line),
            *[latest_ok(name) for name in INDICATORS],
        ),
        visited={days: v.last_visited_at >= since[days] for days in COVERAGE_DAYS},
        flags=flags,
    )


def _figures_query(p: _PerHousehold) -> Any:
    """One row per child region (the region itself for a village) with every additive figure."""
    hh, s, m = p.hh, p.snapshots, p.measures
    return (
        select(
            hh.child,
            func.count().label("households_total"),
            *[_count(hh.status == st.value).label(f"status_{st}") for st in Status],
            *[_count(hh.attribute == a.value).label(f"attribute_{a}") for a in Attribute],
            func.coalesce(func.sum(p.people.people), 0).label("people_in_poverty"),
            _count(p.exit_eligible).label("exit_eligible"),
            func.count(s.latest).label("households_with_income"),
            func.coalesce(func.sum(s.latest - s.baseline), 0).label("income_change"),
            *[
                func.coalesce(func.sum(m[f"measures_{st}"]), 0).label(f"measures_{st}")
                for st in MeasureStatus
            ],
            func.coalesce(func.sum(m.funds), 0).label("funds_planned"),
            func.coalesce(func.sum(m.funds_spent), 0).label("funds_spent"),
            *[_count(p.visited[days]).label(f"visited_{days}d") for days in COVERAGE_DAYS],
            *[_count(condition).label(flag) for flag, condition in p.flags.items()],
        )
        .select_from(p.joined)
        .group_by(hh.child)
    )


def _sums_of(row: Any) -> _Sums:
    # PostgreSQL sums bigints as numeric (Decimal): every figure is whole.
    n = {key: int(value) for key, value in row._mapping.items() if key != "child"}
    return _Sums(
        households_total=n["households_total"],
        by_status={st: n[f"status_{st}"] for st in Status},
        by_attribute={a: n[f"attribute_{a}"] for a in Attribute},
        people_in_poverty=n["people_in_poverty"],
        exit_eligible=n["exit_eligible"],
        households_with_income=n["households_with_income"],
        income_change_fen=n["income_change"],
        measures_by_status={st: n[f"measures_{st}"] for st in MeasureStatus},
        funds_planned_fen=n["funds_planned"],
        funds_spent_fen=n["funds_spent"],
        visited_30d=n["visited_30d"],
        visited_90d=n["visited_90d"],
        flags={f: n[f] for f in FLAGS},
    )


async def _children(
    session: AsyncSession, *, level: codes.Level, code: str
) -> dict[str, tuple[str | None, int | None]]:
    """Name and rural population (sum over its villages) of each child, by code."""
    child_level = CHILD_LEVEL[level]
    region_code = col(Region.code)
    key = _child_key(level, code, region_code)
    is_village = col(Region.level) == int(codes.Level.village)
    levels = {int(codes.Level.village)} | ({int(child_level)} if child_level else set())
    stmt = select(
        key.label("child"),
        func.sum(case((is_village, col(Region.rural_population)))).label("population"),
        func.max(case((region_code == key, col(Region.name)))).label("name"),
    ).where(within_regions([code], region_code), col(Region.level).in_(sorted(levels)))
    # A village is its own single row (no GROUP BY: a constant is no grouping key everywhere).
    rows = (await session.execute(stmt.group_by(key) if child_level else stmt)).all()
    return {
        row.child: (row.name, int(row.population) if row.population is not None else None)
        for row in rows
    }


async def _reported_region(
    session: AsyncSession, *, principal: Principal, code: str, field: str
) -> tuple[Any, codes.Level]:
    """The region progress is reported for, if the caller may see its figures."""
    try:
        level = codes.level_of(code)
    except codes.InvalidCode as exc:  # the right shape, but no division (000000000000)
        raise InvalidInput.field(field, str(exc)) from None
    if level not in CHILD_LEVEL:
        raise InvalidInput.field(field, "progress is reported for a county, a town or a village")
    # Only regions at or below the caller's own: the county above an officer's village is
    # readable as a division, but its figures are not theirs to see.
    if not principal.covers(code):
        raise RegionNotFound(f"region {code} does not exist or is not visible to you")
    region = await regions_service.get_region(session, principal=principal, code=code)
    return region, level


def _counted(code: str, principal: Principal) -> tuple[ColumnElement[bool], ...]:
    """The households a region's figures count: in the region and the caller's regions, and
    not removed."""
    village = col(Household.village_code)
    return (
        within_regions([code], village),
        principal.within(village),
        col(Household.status) != Status.removed.value,
    )


@dataclass(frozen=True)
class HouseholdRows:
    """The export's queries: the counted households of a region page by page in household
    number order (a keyset on the unique number), and the rows of one page of them.

    Pages keep the memory of both the database and the API process bounded by the page,
    however many households the region has: no query sorts or materializes them all.
    """

    code: str
    principal: Principal
    level: codes.Level
    special: Sequence[str]
    steps: Sequence[_Step]
    now: datetime

    def page(self, *, after: str | None, limit: int) -> Select[uuid.UUID, str]:
        """The ids and numbers of the next `limit` households after number `after`."""
        number = col(Household.number)
        stmt = select(col(Household.id), number).where(*_counted(self.code, self.principal))
        if after is not None:
            stmt = stmt.where(number > after)
        return stmt.order_by(number).limit(limit)

    def rows(self, household_ids: Sequence[uuid.UUID]) -> Select[Any]:
        """One row per household of `household_ids` (in number order) with the region
        figures' per-household facts and the export's details (see `_PerHousehold`)."""
        p = _per_household(
            level=self.level,
            code=self.code,
            principal=self.principal,
            special=self.special,
            steps=self.steps,
            now=self.now,
            detailed=True,
            only=household_ids,
        )
        hh, s, v, m, th = p.hh, p.snapshots, p.visits, p.measures, p.thresholds
        assert p.members is not None  # detailed
        return (
            select(
                *[hh[name] for name in HOUSEHOLD_DETAILS],
                p.members.size,
                p.members.head_id_number,
                s.baseline_year,
                s.baseline,
                s.latest_year,
                s.latest,
                th.poverty_line,
                th.monitoring_threshold,
                *[v[f"{c}_{name}"] for name in INDICATORS for c in (Check.ok, Check.not_ok)],
                *[m[f"measures_{st}"] for st in MeasureStatus],
                m.funds,
                m.funds_spent,
                m.overdue,
                v.visits,
                v.recent_visits,
                v.last_visited_at,
                p.exit_eligible.label("exit_eligible"),
                *[condition.label(f"flag_{flag}") for flag, condition in p.flags.items()],
            )
            .select_from(p.joined)
            .order_by(hh.number)
        )


async def household_rows(
    session: AsyncSession, *, principal: Principal, code: str, now: datetime
) -> HouseholdRows:
    """The export's queries for a region; checks the region first (as the region progress),
    so that a refusal comes before any row."""
    _, level = await _reported_region(session, principal=principal, code=code, field="query.region")
    special, steps = await _threshold_steps(session, code=code)
    return HouseholdRows(code, principal, level, special, steps, now)


async def get_region_progress(
    session: AsyncSession, *, principal: Principal, code: str, now: datetime | None = None
) -> RegionProgress:
    """A village's, town's or county's figures, and each child region's (issue 6)."""
    region, level = await _reported_region(
        session, principal=principal, code=code, field="path.code"
    )
    now = now or utcnow()
    special, steps = await _threshold_steps(session, code=code)
    children = await _children(session, level=level, code=code)
    rows = (
        await session.execute(
            _figures_query(
                _per_household(
                    level=level,
                    code=code,
                    principal=principal,
                    special=special,
                    steps=steps,
                    now=now,
                )
            )
        )
    ).all()
    by_child = {row.child: _sums_of(row) for row in rows}
    incidence_threshold = get_settings().village_exit_incidence

    total = _Sums()
    child_entries: list[RegionProgressChild] = []
    for child_code in sorted(set(children) | set(by_child)):
        sums = by_child.get(child_code, _Sums())
        name, sums.rural_population = children.get(child_code, (None, None))
        total.add(sums)
        if CHILD_LEVEL[level] is not None:
            child_level = codes.level_of(child_code)
            child_entries.append(
                RegionProgressChild(
                    code=child_code,
                    name=name,
                    level=int(child_level),
                    level_name=child_level.name,
                    **_figures(sums, incidence_threshold=incidence_threshold),
                )
            )
    return RegionProgress(
        code=region.code,
        name=region.name,
        level=region.level,
        level_name=level.name,
        **_figures(total, incidence_threshold=incidence_threshold),
        as_of=now,
        children=child_entries,
    )
