"""A region's standing (village, town or county), computed in grouped SQL.

Every figure is a count or a sum over households, so one grouped query answers the region and
all its children at once (GROUP BY the child's code prefix): the region is the sum of its
children. Per household, window functions number the snapshots and the visits; conditional
aggregates then pick the latest snapshot, the one before it, the baseline, and each indicator's
latest assessment. Nothing is loaded row by row into Python.

The per-household rules (the exit rule, the risk flags, the clearing rule; orders, dates in
UTC, what is overdue, lost or dropped) are the SQL forms of `app.monitoring.rules`, which states
them beside their Python forms.

Which households count: those of the region the caller may see, except `removed` ones; an
ordinary household (一般农户, no status) counts. `exit_eligible` counts the households still
poor (new, in_poverty, returned) that meet the exit rule. The monitoring figures count the
monitoring cases of the counted households: by category and by risk type the open ones
(neither cleared nor rejected), by status all; identified (cleared) this year: `identified_on`
(`cleared_on`) in the calendar year of `as_of` (UTC); open alerts: alerts not yet verified;
households under guarantees: open identified cases (identified or in a clearing review) whose
household has no working-age labour (clearing reason `no_labour`); clearable: open identified
cases for which the clearing rule holds no reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable
from sqlmodel import col

from app.auth.principal import Principal, within_regions
from app.core.base import UTCDateTime, utcnow
from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.core.i18n import Text, text_of
from app.core.money import divide_half_up, fen_str
from app.core.ports import Port
from app.households.models import Household, Member
from app.households.vocabulary import POOR_STATUSES, Attribute, Relation, Status
from app.monitoring import rules
from app.monitoring.income import exclusion_sets
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.monitoring.vocabulary import (
    CLOSED_CASE_STATUSES,
    AlertStatus,
    CaseCategory,
    CaseStatus,
    ClearingBlock,
    ClearingMethod,
    Origin,
    RiskType,
)
from app.photos.models import PhotoRef
from app.photos.refs import not_held
from app.progress.household import RECENT_VISIT_DAYS
from app.progress.household_schemas import ExitBlock
from app.progress.region_schemas import (
    MeasureFigures,
    MonitoringFigures,
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
from app.thresholds.service import Steps, in_step, steps_cte, threshold_steps

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
class Sums:
    """Additive figures of a set of households: a child's row, or the sum of the children."""

    households_total: int = 0
    by_origin: dict[str, int] = field(default_factory=dict)
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
    # monitoring
    cases_by_category: dict[str, int] = field(default_factory=dict)
    cases_by_status: dict[str, int] = field(default_factory=dict)
    cases_by_risk_type: dict[str, int] = field(default_factory=dict)
    identified_this_year: int = 0
    cleared_this_year: dict[str, int] = field(default_factory=dict)
    open_alerts: int = 0
    under_guarantees: int = 0
    clearable: int = 0

    def add(self, other: Sums) -> None:
        """Add `other` into these sums (`other` is left as it was)."""
        for name in _SUM_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
            elif name == "rural_population":
                if theirs is not None:
                    self.rural_population = (mine or 0) + theirs
            else:
                setattr(self, name, mine + theirs)


_SUM_FIELDS = tuple(f.name for f in fields(Sums))


FLAGS = tuple(RiskFlagCounts.model_fields)


def _figures(sums: Sums, *, incidence_threshold: float) -> dict[str, Any]:
    """The public figures (RegionFigures' fields) from the sums."""
    total = sums.households_total
    population = sums.rural_population or None
    incidence = sums.people_in_poverty / population if population else None
    measures_total = sum(sums.measures_by_status.values())
    return {
        "households_total": total,
        "households_by_origin": {o: sums.by_origin.get(o, 0) for o in Origin},
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
        "monitoring": MonitoringFigures(
            open_cases=sum(sums.cases_by_category.values()),
            cases_by_category={c: sums.cases_by_category.get(c, 0) for c in CaseCategory},
            cases_by_status={c: sums.cases_by_status.get(c, 0) for c in CaseStatus},
            cases_by_risk_type={r: sums.cases_by_risk_type.get(r, 0) for r in RiskType},
            identified_this_year=sums.identified_this_year,
            cleared_this_year={m: sums.cleared_this_year.get(m, 0) for m in ClearingMethod},
            open_alerts=sums.open_alerts,
            under_guarantees=sums.under_guarantees,
            clearable=sums.clearable,
        ),
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


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


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
    thresholds: Any  # poverty_line, monitoring_threshold(_year) of the latest snapshot's year
    exit_reasons: dict[ExitBlock, ColumnElement[bool]]  # the exit rule, per reason code
    visited: dict[int, ColumnElement[bool]]  # by COVERAGE_DAYS
    flags: dict[str, ColumnElement[bool]]  # by FLAGS

    @property
    def exit_eligible(self) -> ColumnElement[bool]:
        """The household meets the exit rule (whatever its status)."""
        return and_(*[~reason for reason in self.exit_reasons.values()])


def _per_household(
    *,
    level: codes.Level,
    code: str,
    principal: Principal,
    steps: Steps,
    now: datetime,
    detailed: bool = False,
    only: Sequence[uuid.UUID] | None = None,
    villages: Sequence[str] | None = None,
) -> _PerHousehold:
    """The per-household query parts; `detailed` adds the columns of the export's rows, `only`
    restricts them to some of the counted households (a page of them), `villages` to the
    households of some villages."""
    settings = get_settings()
    today = now.astimezone(UTC).date()  # as the household progress: dates in UTC
    village = col(Household.village_code)
    counted_where = _counted(code, principal, villages)
    if only is not None:
        counted_where += (col(Household.id).in_(only),)
    hh = (
        select(
            col(Household.id).label("household_id"),
            col(Household.status).label("status"),
            col(Household.attribute).label("attribute"),
            col(Household.origin).label("origin"),
            _child_key(level, code, village).label("child"),
            steps.key(village).label("threshold_key"),
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
    recent_since = literal(now - timedelta(days=RECENT_VISIT_DAYS), UTCDateTime)
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

    # The exit rule's facts: the two latest annual years, the member checks.
    annual = rules.annual_sql(counted, name="annual")
    member_facts = rules.member_facts_sql(counted, today=today, name="member_facts")

    th = steps_cte(steps.steps)
    th_1, th_2 = th.alias("thresholds_1"), th.alias("thresholds_2")
    s, v, m, a = snapshots.c, visits.c, measures.c, annual.c
    key = hh.c.threshold_key
    joined = (
        hh.outerjoin(snapshots, s.household_id == hh.c.household_id)
        .outerjoin(visits, v.household_id == hh.c.household_id)
        .outerjoin(measures, m.household_id == hh.c.household_id)
        .outerjoin(people, people.c.household_id == hh.c.household_id)
        .outerjoin(photos_missing, photos_missing.c.household_id == hh.c.household_id)
        .outerjoin(annual, a.household_id == hh.c.household_id)
        .outerjoin(member_facts, member_facts.c.household_id == hh.c.household_id)
        .outerjoin(th, in_step(th, key=key, year=s.latest_year))
        .outerjoin(th_1, in_step(th_1, key=key, year=a.year_1))
        .outerjoin(th_2, in_step(th_2, key=key, year=a.year_2))
    )
    if members is not None:
        joined = joined.outerjoin(members, members.c.household_id == hh.c.household_id)

    since = {days: literal(now - timedelta(days=days), UTCDateTime) for days in COVERAGE_DAYS}
    flags = rules.risk_flags_sql(
        status=hh.c.status,
        snapshots=s,
        monitoring_threshold=th.c.monitoring_threshold,
        visits=v,
        measures=m,
        photos_missing=photos_missing.c,
        now=now,
        settings=settings,
    )
    return _PerHousehold(
        hh=hh.c,
        joined=joined,
        snapshots=s,
        visits=v,
        measures=m,
        people=people.c,
        members=None if members is None else members.c,
        thresholds=th.c,
        exit_reasons=rules.exit_reasons_sql(
            latest=s.latest,
            line=th.c.poverty_line,
            visits=v,
            annual=a,
            line_1=th_1.c.poverty_line,
            line_2=th_2.c.poverty_line,
            members=member_facts.c,
        ),
        visited={days: v.last_visited_at >= since[days] for days in COVERAGE_DAYS},
        flags={code.value: condition for code, condition in flags.items()},
    )


def _figures_query(p: _PerHousehold) -> Any:
    """One row per child region (the region itself for a village) with every additive figure."""
    hh, s, m = p.hh, p.snapshots, p.measures
    return (
        select(
            hh.child,
            func.count().label("households_total"),
            *[_count(hh.origin == o.value).label(f"origin_{o}") for o in Origin],
            *[_count(hh.status == st.value).label(f"status_{st}") for st in Status],
            *[_count(hh.attribute == a.value).label(f"attribute_{a}") for a in Attribute],
            func.coalesce(func.sum(p.people.people), 0).label("people_in_poverty"),
            _count(
                and_(hh.status.in_(sorted(st.value for st in POOR_STATUSES)), p.exit_eligible)
            ).label("exit_eligible"),
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


def _sums_of(row: Any) -> Sums:
    # PostgreSQL sums bigints as numeric (Decimal): every figure is whole.
    n = {key: int(value) for key, value in row._mapping.items() if key != "child"}
    return Sums(
        households_total=n["households_total"],
        by_origin={o: n[f"origin_{o}"] for o in Origin},
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


def _risk_type_in(risk_types: Any, risk: RiskType) -> ColumnElement[bool]:
    """SQL: a case's JSON list of risk types holds `risk`. The list holds validated codes only
    (letters and underscores), so the quoted code appears in its text exactly when it is in
    the list, on both databases."""
    return cast(risk_types, String).like(f'%"{risk.value}"%')


def _monitoring_queries(
    *,
    level: codes.Level,
    code: str,
    principal: Principal,
    steps: Steps,
    exclusions: Any,
    today: date,
    villages: Sequence[str] | None = None,
) -> list[Executable]:
    """The monitoring figures, one row per child region each: the cases, the open alerts, and
    the clearing rule of the open identified cases."""
    counted = _counted(code, principal, villages)
    village = col(Household.village_code)
    child = _child_key(level, code, village).label("child")
    c = MonitoringCase
    status = col(c.status)
    is_open = status.not_in(sorted(st.value for st in CLOSED_CASE_STATUSES))
    year_start, year_end = date(today.year, 1, 1), date(today.year, 12, 31)
    cases = (
        select(
            child,
            *[_count(status == st.value).label(f"case_status_{st}") for st in CaseStatus],
            *[
                _count(and_(is_open, col(c.category) == cat.value)).label(f"case_category_{cat}")
                for cat in CaseCategory
            ],
            *[
                _count(and_(is_open, _risk_type_in(col(c.risk_types), risk))).label(
                    f"case_risk_{risk}"
                )
                for risk in RiskType
            ],
            _count(col(c.identified_on).between(year_start, year_end)).label(
                "identified_this_year"
            ),
            *[
                _count(
                    and_(
                        status == CaseStatus.cleared.value,
                        col(c.cleared_on).between(year_start, year_end),
                        col(c.clearing_method) == method.value,
                    )
                ).label(f"cleared_{method}")
                for method in ClearingMethod
            ],
        )
        .select_from(c)
        .join(Household, col(Household.id) == col(c.household_id))
        .where(*counted)
        .group_by(child)
    )
    alerts = (
        select(child, func.count().label("open_alerts"))
        .select_from(MonitoringAlert)
        .join(Household, col(Household.id) == col(MonitoringAlert.household_id))
        .where(*counted, col(MonitoringAlert.status) == AlertStatus.open.value)
        .group_by(child)
    )
    clearing = rules.clearing_sql(
        rules.identified_cases(*counted),
        steps=steps,
        thresholds=steps_cte(steps.steps, name="clearing_thresholds"),
        exclusions=exclusions,
        today=today,
        rigid_share=get_settings().monitoring_rigid_expense_share,
    )
    subject_child = _child_key(level, code, clearing.subjects.village_code).label("child")
    cleared = (
        select(
            subject_child,
            _count(clearing.reasons[ClearingBlock.no_labour]).label("under_guarantees"),
            _count(clearing.eligible).label("clearable"),
        )
        .select_from(clearing.joined)
        .group_by(subject_child)
    )
    return [cases, alerts, cleared]


def _add_monitoring(sums: Sums, row: Any) -> None:
    """Add a row of one of `_monitoring_queries` to a child's sums."""
    n = {key: int(value or 0) for key, value in row._mapping.items() if key != "child"}
    for st in CaseStatus:
        sums.cases_by_status[st] = sums.cases_by_status.get(st, 0) + n.get(f"case_status_{st}", 0)
    for cat in CaseCategory:
        sums.cases_by_category[cat] = sums.cases_by_category.get(cat, 0) + n.get(
            f"case_category_{cat}", 0
        )
    for risk in RiskType:
        sums.cases_by_risk_type[risk] = sums.cases_by_risk_type.get(risk, 0) + n.get(
            f"case_risk_{risk}", 0
        )
    for method in ClearingMethod:
        sums.cleared_this_year[method] = sums.cleared_this_year.get(method, 0) + n.get(
            f"cleared_{method}", 0
        )
    sums.identified_this_year += n.get("identified_this_year", 0)
    sums.open_alerts += n.get("open_alerts", 0)
    sums.under_guarantees += n.get("under_guarantees", 0)
    sums.clearable += n.get("clearable", 0)


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
        raise InvalidInput.field(field, text_of(exc)) from None
    if level not in CHILD_LEVEL:
        raise InvalidInput.field(
            field, Text("progress is reported for a county, a town or a village")
        )
    # Only regions at or below the caller's own: the county above an officer's village is
    # readable as a division, but its figures are not theirs to see.
    if not principal.covers(code):
        raise RegionNotFound(
            Text("region {code} does not exist or is not visible to you", code=code)
        )
    region = await regions_service.get_region(session, principal=principal, code=code)
    return region, level


def _counted(
    code: str, principal: Principal, villages: Sequence[str] | None = None
) -> tuple[ColumnElement[bool], ...]:
    """The households a region's figures count: in the region and the caller's regions (and in
    `villages`, if given), and not removed (an ordinary household has no status: it counts)."""
    village = col(Household.village_code)
    status = col(Household.status)
    return (
        within_regions([code], village),
        principal.within(village),
        or_(status.is_(None), status != Status.removed.value),
        *([village.in_(list(villages))] if villages is not None else []),
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
    steps: Steps
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
                th.monitoring_threshold_year,
                *[v[f"{c}_{name}"] for name in INDICATORS for c in (Check.ok, Check.not_ok)],
                *[m[f"measures_{st}"] for st in MeasureStatus],
                m.funds,
                m.funds_spent,
                m.overdue,
                v.visits,
                v.recent_visits,
                v.last_visited_at,
                p.exit_eligible.label("exit_eligible"),
                # The exit rule's reasons, by code (true when a reason of the code holds).
                *[reason.label(f"exit_{block}") for block, reason in p.exit_reasons.items()],
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
    steps = await threshold_steps(session, code=code)
    return HouseholdRows(code, principal, level, steps, now)


async def sums_by_child(
    session: AsyncSession,
    *,
    level: codes.Level,
    code: str,
    principal: Principal,
    now: datetime,
    villages: Sequence[str] | None = None,
) -> dict[str, Sums]:
    """The additive figures of each child region of `code` (as `level` has them: a county's
    towns, a town's villages; `codes.Level.town` for villages whatever the region), over the
    households of `villages` only if given."""
    steps = await threshold_steps(session, code=code)
    per_household = _per_household(
        level=level, code=code, principal=principal, steps=steps, now=now, villages=villages
    )
    rows = (await session.execute(_figures_query(per_household))).all()
    by_child = {row.child: _sums_of(row) for row in rows}
    for query in _monitoring_queries(
        level=level,
        code=code,
        principal=principal,
        steps=steps,
        exclusions=await exclusion_sets(session, code=code),
        today=now.astimezone(UTC).date(),
        villages=villages,
    ):
        for row in await session.execute(query):
            _add_monitoring(by_child.setdefault(row.child, Sums()), row)
    return by_child


def child_of(level: codes.Level, code: str, village: str) -> str:
    """The child region of `code` (at `level`) a village lies in: as `_child_key`, in Python."""
    if level is codes.Level.county:
        return village[:9] + "000"
    if level is codes.Level.town:
        return village[:12]
    return code


ChildSums = Callable[
    [AsyncSession, Principal, str, codes.Level, datetime],
    Awaitable[tuple[dict[str, Sums], datetime] | None],
]
# The sums of each child region from figures kept between requests (app.progress.figures),
# handed over at assembly; None when it cannot answer (then everything is computed here).
child_sums: Port[ChildSums] = Port("kept figures")


async def get_region_progress(
    session: AsyncSession, *, principal: Principal, code: str, now: datetime | None = None
) -> RegionProgress:
    """A village's, town's or county's figures, and each child region's (issue 6).

    Without `now`, the figures of each village come from those kept since nothing in it
    changed (`as_of` is then when the oldest of them was computed).
    """
    region, level = await _reported_region(
        session, principal=principal, code=code, field="path.code"
    )
    kept = await child_sums()(session, principal, code, level, utcnow()) if now is None else None
    if kept is not None:
        by_child, now = kept
    else:
        now = now or utcnow()
        by_child = await sums_by_child(
            session, level=level, code=code, principal=principal, now=now
        )
    children = await _children(session, level=level, code=code)
    incidence_threshold = get_settings().village_exit_incidence

    total = Sums()
    child_entries: list[RegionProgressChild] = []
    for child_code in sorted(set(children) | set(by_child)):
        name, population = children.get(child_code, (None, None))
        # A copy: kept sums are shared between requests.
        sums = replace(by_child.get(child_code, Sums()), rural_population=population)
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
