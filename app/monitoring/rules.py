"""The rules that judge a household, each in its Python form (one household) and its SQL form
(every household of a region) side by side: the household exit rule (脱贫), the risk flags
(防返贫监测 signals) and the clearing rule of a monitoring case (风险消除).

The household progress (`app.progress.household`) loads one household's facts and applies the
Python forms; the region progress and the export (`app.progress.region`) build the per-household
facts in SQL and apply the SQL forms; the monitoring steps refuse a clearance with the Python
form of the clearing rule. Tests compare the forms on generated households:
`tests/progress/test_region_progress.py` (exit rule, risk flags: region figures against a plain
Python computation) and `tests/monitoring/test_rules_agree.py` (clearing rule, both forms).

Shared definitions:

* Snapshot order: **latest** = (year desc, recorded_at desc, id desc); the **baseline** is the
  earliest snapshot of kind `baseline`, else the earliest of all (year, recorded_at, id asc).
* Visit order: latest = (visited_at desc, id desc).
* Dates are UTC dates; ages are whole years on `today` from the birth date of the member's ID
  number (a birthday on 29 February comes on 1 March in other years). A member without one has
  no known age: never a school-age child nor working-age labour. Only current members (not
  removed) count.

**The household exit rule** (DOMAIN.md, household exit; issue 14, item 7). One reason per
failed condition (one per indicator for the indicator reasons):

* `no_snapshot`: no income snapshot at all.
* `income_below_line`: the latest snapshot's per capita does not exceed the poverty line of its
  year (no reason when the line is unknown, as after 2020).
* `income_not_stable`: fewer than two annual snapshots, or the two latest are not both above
  the line of their year. "The two latest" are the latest annual snapshot (kind `annual`) of
  each of the two latest years that have one: a second annual snapshot of one year corrects the
  first, it is not a second year. A year whose line is unknown counts as above (as above).
* `indicator_unknown` / `indicator_not_ok`: per indicator, its latest assessment (the latest
  visit whose check is not `unknown`) is missing / `not_ok`.
* `education_not_secured`: a member aged 6–15 is not in school.
* `medical_not_secured`: a member has no basic medical insurance.

The rule is about the household's conditions, whatever its status; the region's `exit_eligible`
counts the households still poor (new, in_poverty, returned) that meet it.

**Risk flags**: see `risk_flags` (Python) and `risk_flags_sql`.

**The clearing rule** (issue 14, item 4; DOMAIN.md, monitoring): a case identified on
`identified_on` may be cleared as of `today` when none of these reasons holds:

* `too_soon`: fewer than 182 days from `identified_on` to `today`.
* `income_below_threshold`: the latest snapshot has a monitoring income (`app.monitoring.income`:
  net income without the region's excluded items, per capita) not above the monitoring threshold
  in force for its year in the household's village; no snapshot, or no threshold known for that
  year, is this reason too (nothing shows the income above the threshold).
* `income_not_stable`: among the snapshots recorded (UTC date of `recorded_at`) on or after
  `identified_on` whose monitoring income is above the threshold of their year, no two are at
  least 182 days apart (the first and the last such are compared).
* `rigid_expenses_unresolved`: the latest snapshot's rigid expenses are positive and exceed the
  share `monitoring_rigid_expense_share` of its net income (exact fraction).
* `guarantee_not_secured`: the latest visit (any mode) has one of its six checks (food,
  clothing, education, medical, housing, water) other than `ok`, or there is no visit; or a
  member aged 6–15 is not in school; or a member has no basic medical insurance.
* `no_measure`: no measure of the household with `start_date` on or after `identified_on` is
  `in_progress` or `done`.
* `no_labour`: no member aged 16–64 has labour `normal` or `skilled`. Such a household stays
  covered by guarantees (兜底) and is never cleared.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    FromClause,
    Integer,
    Subquery,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import col

from app.auth.principal import within_regions
from app.core.base import UTCDateTime
from app.core.config import Settings, get_settings
from app.core.i18n import Text
from app.core.money import fen_str
from app.households.models import Household, Member
from app.households.vocabulary import Labour, Status
from app.monitoring.income import (
    ExclusionSets,
    excluded_items,
    exclusion_sets,
    monitoring_per_capita,
    monitoring_per_capita_sql,
)
from app.monitoring.models import MonitoringCase
from app.monitoring.vocabulary import CaseStatus, ClearingBlock
from app.progress.household_schemas import (
    ExitAssessment,
    ExitBlock,
    ExitReason,
    MeasuresProgress,
    RiskCode,
    RiskFlag,
    VisitsProgress,
)
from app.records.models import IncomeSnapshot, Measure, Visit
from app.records.vocabulary import INDICATORS, Check, MeasureStatus, SnapshotKind
from app.thresholds import service as thresholds_service
from app.thresholds.service import Effective, Steps, in_step, steps_cte, threshold_steps

# --- shared pieces -----------------------------------------------------------------------------

CLEARING_WAIT_DAYS = 182
"""Half a year: from identification to clearing, and between the two stable snapshots."""

SCHOOL_AGES = (6, 15)
"""Compulsory-education ages: a member of these ages must be in school."""

WORKING_AGES = (16, 64)
"""Working ages: a member of these ages with WORKING_LABOUR is the household's labour."""

WORKING_LABOUR = (Labour.normal, Labour.skilled)

CLEARING_MEASURE_STATUSES = (MeasureStatus.in_progress, MeasureStatus.done)
"""A measure in one of these, started on or after identification, counts as applied."""

IDENTIFIED_OPEN_STATUSES = (
    CaseStatus.identified,
    CaseStatus.clearing_village_reviewed,
    CaseStatus.clearing_town_reviewed,
)
"""An open case in one of these is a monitoring object: the clearing rule applies to it."""

CLOSED_MEASURE_STATUSES = (MeasureStatus.done, MeasureStatus.cancelled)
"""A measure in one of these is never overdue."""

LIFTED_STATUSES = (Status.lifted, Status.lifted_no_support)
"""Households watched against the monitoring threshold (`below_monitoring_threshold`)."""


def latest_snapshot_order(model: Any = IncomeSnapshot) -> tuple[Any, ...]:
    """ORDER BY of "latest first": year, recorded_at, id, all descending."""
    return (col(model.year).desc(), col(model.recorded_at).desc(), col(model.id).desc())


def baseline_order(model: Any = IncomeSnapshot) -> tuple[Any, ...]:
    """ORDER BY whose first row is the baseline: baseline kind first, then the earliest."""
    return (
        case((col(model.kind) == SnapshotKind.baseline.value, 0), else_=1),
        col(model.year),
        col(model.recorded_at),
        col(model.id),
    )


def visit_order(model: Any = Visit) -> tuple[Any, ...]:
    """ORDER BY of "latest visit first": visited_at, id, both descending."""
    return (col(model.visited_at).desc(), col(model.id).desc())


def measure_overdue(today: date, model: Any = Measure) -> ColumnElement[bool]:
    """SQL condition: the measure is past its due date and neither done nor cancelled."""
    closed = [status.value for status in CLOSED_MEASURE_STATUSES]
    return (col(model.due_date) < today) & col(model.status).not_in(closed)


def days_since(moment: datetime, *, today: date) -> int:
    """Calendar days (UTC) from `moment` to `today`; 0 for a moment today or (clock skew) later."""
    return max(0, (today - moment.astimezone(UTC).date()).days)


def visit_overdue(days_since_last: int | None, *, cadence_days: int) -> bool:
    """Never visited, or not for more than the cadence."""
    return days_since_last is None or days_since_last > cadence_days


def income_dropped(previous: int, latest: int, *, share: float) -> bool:
    """(previous − latest) / previous > share, for a positive previous per capita (exact)."""
    return previous > 0 and Fraction(previous - latest, previous) > Fraction(str(share))


def percent(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator in percent, one decimal, rounded half up (away from zero)."""
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )


def age_on(birth: date, today: date) -> int:
    """Whole years from `birth` to `today` (a birthday on 29 February comes on 1 March)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def born_by(today: date, years: int) -> date:
    """The latest birth date of someone aged at least `years` on `today` (SQL bound)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February, `years` before is not a leap year
        return date(today.year - years, 2, 28)


def share_as_fraction(share: float) -> tuple[int, int]:
    """A configured share (0.30) as an exact fraction (3, 10): comparisons stay in integers."""
    fraction = Fraction(Decimal(str(share)))
    return fraction.numerator, fraction.denominator


def _share_text(share: float) -> str:
    return f"{share * 100:g} %"


class _DayNumber(FunctionElement[int]):
    """SQL: days since 1970-01-01 of a date, or of a timestamp's UTC date."""

    type = Integer()
    inherit_cache = True
    name = "day_number"


@compiles(_DayNumber, "sqlite")
def _day_number_sqlite(element: _DayNumber, compiler: SQLCompiler, **kw: Any) -> str:
    # Timestamps are stored in UTC without an offset ("2026-05-01 08:00:00.000000").
    (argument,) = element.clauses
    return f"CAST(julianday(date({compiler.process(argument, **kw)})) - 2440587.5 AS INTEGER)"


@compiles(_DayNumber, "postgresql")
def _day_number_postgresql(element: _DayNumber, compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = element.clauses
    text = compiler.process(argument, **kw)
    if isinstance(argument.type, Date):
        return f"({text} - DATE '1970-01-01')"
    return f"(CAST(({text}) AT TIME ZONE 'UTC' AS DATE) - DATE '1970-01-01')"


def day_number(column: Any) -> ColumnElement[int]:
    return _DayNumber(column)


# --- one household's facts (the Python forms read these) ---------------------------------------


@dataclass(frozen=True)
class Snap:
    id: uuid.UUID
    year: int
    per_capita: int  # fen


@dataclass(frozen=True)
class Snapshots:
    baseline: Snap
    latest: Snap
    previous: Snap | None  # the second by the latest order
    series: list[Snap]  # the latest of each year, years ascending


@dataclass(frozen=True)
class Assessed:
    value: str
    visit_id: uuid.UUID
    visited_at: datetime


@dataclass(frozen=True)
class AnnualSnap:
    """The latest annual snapshot of a year, with the poverty line of that year."""

    id: uuid.UUID
    year: int
    per_capita: int
    line: int | None

    @property
    def above(self) -> bool:
        return self.line is None or self.per_capita > self.line


@dataclass(frozen=True)
class MemberFacts:
    birth_date: date | None
    labour: str
    in_school: bool
    medical_insurance: bool


def _aged(member: MemberFacts, ages: tuple[int, int], today: date) -> bool:
    if member.birth_date is None:
        return False
    return ages[0] <= age_on(member.birth_date, today) <= ages[1]


def out_of_school(members: Sequence[MemberFacts], today: date) -> int:
    """Members of school age not in school."""
    return sum(1 for m in members if _aged(m, SCHOOL_AGES, today) and not m.in_school)


def uninsured(members: Sequence[MemberFacts]) -> int:
    """Members without basic medical insurance."""
    return sum(1 for m in members if not m.medical_insurance)


async def current_members(session: AsyncSession, household_id: uuid.UUID) -> list[MemberFacts]:
    """The household's members that are not removed."""
    rows = await session.execute(
        select(
            col(Member.birth_date),
            col(Member.labour),
            col(Member.in_school),
            col(Member.medical_insurance),
        ).where(col(Member.household_id) == household_id, col(Member.removed_at).is_(None))
    )
    return [MemberFacts(*row) for row in rows]


async def annual_snapshots(session: AsyncSession, *, household: Household) -> list[AnnualSnap]:
    """The latest annual snapshot of each of the two latest years that have one, latest first,
    with the line of their year in the household's village."""
    s = IncomeSnapshot
    rows = (
        await session.execute(
            select(col(s.id), col(s.year), col(s.per_capita_income))
            .where(col(s.household_id) == household.id, col(s.kind) == SnapshotKind.annual.value)
            .order_by(*latest_snapshot_order())
        )
    ).all()
    chosen: list[tuple[uuid.UUID, int, int]] = []
    for id_, year, per_capita in rows:
        if not chosen or chosen[-1][1] != year:
            chosen.append((id_, year, int(per_capita)))
        if len(chosen) == 2:
            break
    lines = await thresholds_service.effective_thresholds(
        session, region_code=household.village_code, years={year for _, year, _ in chosen}
    )
    return [AnnualSnap(i, y, pc, lines[y].poverty_line) for i, y, pc in chosen]


# --- the household exit rule -------------------------------------------------------------------


def judge_exit(
    snapshots: Snapshots | None,
    lines: Effective | None,
    latest: dict[str, Assessed],
    *,
    annual: Sequence[AnnualSnap],
    members: Sequence[MemberFacts],
    today: date,
) -> ExitAssessment:
    """The household exit rule (Python form): one reason per condition that fails."""
    reasons: list[ExitReason] = []
    if snapshots is None:
        reasons.append(
            ExitReason(code=ExitBlock.no_snapshot, detail=Text("no income snapshot yet"))
        )
    elif lines is not None and lines.poverty_line is not None:
        snap = snapshots.latest
        if snap.per_capita <= lines.poverty_line:
            reasons.append(
                ExitReason(
                    code=ExitBlock.income_below_line,
                    detail=Text(
                        "per-capita income {snap_per_capita} yuan of {snap_year} does "
                        "not exceed the poverty line {lines_poverty_line} yuan",
                        snap_per_capita=fen_str(snap.per_capita),
                        snap_year=snap.year,
                        lines_poverty_line=fen_str(lines.poverty_line),
                    ),
                )
            )
    if len(annual) < 2:
        reasons.append(
            ExitReason(
                code=ExitBlock.income_not_stable,
                detail=Text(
                    "annual snapshots of {annual_count} year(s): the two latest "
                    "years' are needed, both above the line",
                    annual_count=len(annual),
                ),
            )
        )
    elif not all(snap.above for snap in annual):
        below = [snap for snap in annual if not snap.above]
        reasons.append(
            ExitReason(
                code=ExitBlock.income_not_stable,
                detail=Text.join(
                    Text(
                        "annual per-capita income {income} yuan of {year} does not exceed the "
                        "poverty line {line} yuan",
                        income=fen_str(snap.per_capita),
                        year=snap.year,
                        line=fen_str(snap.line or 0),
                    )
                    for snap in below
                ),
            )
        )
    for name in INDICATORS:
        found = latest.get(name)
        if found is None:
            reasons.append(
                ExitReason(
                    code=ExitBlock.indicator_unknown,
                    detail=Text("{name}: never assessed on a visit", name=name),
                )
            )
        elif found.value == Check.not_ok.value:
            reasons.append(
                ExitReason(
                    code=ExitBlock.indicator_not_ok,
                    detail=Text("{name}: not_ok at the latest assessment", name=name),
                )
            )
    if n := out_of_school(members, today):
        reasons.append(
            ExitReason(
                code=ExitBlock.education_not_secured,
                detail=Text(
                    "{n} member(s) aged {youngest}–{oldest} not in school",
                    n=n,
                    youngest=SCHOOL_AGES[0],
                    oldest=SCHOOL_AGES[1],
                ),
            )
        )
    if n := uninsured(members):
        reasons.append(
            ExitReason(
                code=ExitBlock.medical_not_secured,
                detail=Text("{n} member(s) without basic medical insurance", n=n),
            )
        )
    return ExitAssessment(eligible=not reasons, reasons=reasons)


def annual_sql(household_ids: Any, *, name: str = "annual") -> Subquery:
    """SQL facts of the exit rule's stability: per household, the latest annual snapshot's
    year and per capita of its two latest years with one (`year_1`, `per_capita_1` the latest;
    `year_2`, `per_capita_2`). Join the lines of those years with `in_step`."""
    s = IncomeSnapshot
    household = col(s.household_id)
    by_year = (
        select(
            household.label("household_id"),
            col(s.year).label("year"),
            col(s.per_capita_income).label("per_capita"),
            func.row_number()
            .over(
                partition_by=(household, col(s.year)),
                order_by=(col(s.recorded_at).desc(), col(s.id).desc()),
            )
            .label("in_year"),
        )
        .where(col(s.kind) == SnapshotKind.annual.value, household.in_(household_ids))
        .subquery(f"{name}_by_year")
    )
    years = (
        select(
            by_year.c.household_id,
            by_year.c.year,
            by_year.c.per_capita,
            func.row_number()
            .over(partition_by=by_year.c.household_id, order_by=by_year.c.year.desc())
            .label("rank"),
        )
        .where(by_year.c.in_year == 1)
        .subquery(f"{name}_years")
    )
    y = years.c
    return (
        select(
            y.household_id,
            func.max(case((y.rank == 1, y.year))).label("year_1"),
            func.max(case((y.rank == 1, y.per_capita))).label("per_capita_1"),
            func.max(case((y.rank == 2, y.year))).label("year_2"),
            func.max(case((y.rank == 2, y.per_capita))).label("per_capita_2"),
        )
        .where(y.rank <= 2)
        .group_by(y.household_id)
        .subquery(name)
    )


def member_facts_sql(household_ids: Any, *, today: date, name: str = "member_facts") -> Subquery:
    """SQL facts of the member checks, per household (current members): `out_of_school`,
    `uninsured` and `labour` (members aged 16–64 able to work)."""
    birth = col(Member.birth_date)
    labour = [w.value for w in WORKING_LABOUR]
    school_age = _aged_sql(birth, SCHOOL_AGES, today)
    working = and_(_aged_sql(birth, WORKING_AGES, today), col(Member.labour).in_(labour))
    return (
        select(
            col(Member.household_id).label("household_id"),
            func.sum(case((and_(school_age, col(Member.in_school).is_(False)), 1), else_=0)).label(
                "out_of_school"
            ),
            func.sum(case((col(Member.medical_insurance).is_(False), 1), else_=0)).label(
                "uninsured"
            ),
            func.sum(case((working, 1), else_=0)).label("labour"),
        )
        .where(col(Member.removed_at).is_(None), col(Member.household_id).in_(household_ids))
        .group_by(col(Member.household_id))
        .subquery(name)
    )


def _aged_sql(birth: Any, ages: tuple[int, int], today: date) -> ColumnElement[bool]:
    return and_(birth <= born_by(today, ages[0]), birth > born_by(today, ages[1] + 1))


def indicator_latest_ok(visits: Any, name: str) -> ColumnElement[bool]:
    """SQL: the indicator's latest assessment is `ok`, from the ranks (1 = the newest visit) of
    its newest `ok` and newest `not_ok` (`ok_<name>`, `not_ok_<name>`)."""
    ok, not_ok = visits[f"ok_{name}"], visits[f"not_ok_{name}"]
    return and_(ok.is_not(None), or_(not_ok.is_(None), ok < not_ok))


def exit_reasons_sql(
    *,
    latest: Any,
    line: Any,
    visits: Any,
    annual: Any,
    line_1: Any,
    line_2: Any,
    members: Any,
) -> dict[ExitBlock, ColumnElement[bool]]:
    """The household exit rule (SQL form): per code, whether a reason of that code holds.

    `latest` is the latest snapshot's per capita and `line` its year's line; `visits` has the
    indicator ranks (see `indicator_latest_ok`); `annual` is `annual_sql`, with `line_1` and
    `line_2` the lines of its two years; `members` is `member_facts_sql`.
    """

    def above(per_capita: Any, line_: Any) -> ColumnElement[bool]:
        return or_(line_.is_(None), per_capita > line_)

    unknown = [
        and_(visits[f"ok_{n}"].is_(None), visits[f"not_ok_{n}"].is_(None)) for n in INDICATORS
    ]
    return {
        ExitBlock.no_snapshot: latest.is_(None),
        ExitBlock.income_below_line: and_(latest.is_not(None), line.is_not(None), latest <= line),
        ExitBlock.income_not_stable: or_(
            annual.per_capita_2.is_(None),
            ~above(annual.per_capita_1, line_1),
            ~above(annual.per_capita_2, line_2),
        ),
        ExitBlock.indicator_unknown: or_(*unknown),
        ExitBlock.indicator_not_ok: or_(
            *[
                and_(~indicator_latest_ok(visits, n), ~is_unknown)
                for n, is_unknown in zip(INDICATORS, unknown, strict=True)
            ]
        ),
        ExitBlock.education_not_secured: func.coalesce(members.out_of_school, 0) > 0,
        ExitBlock.medical_not_secured: func.coalesce(members.uninsured, 0) > 0,
    }


# --- the risk flags ----------------------------------------------------------------------------


def write_flags(
    *,
    status: str | None,
    snapshots: Snapshots | None,
    lines: Effective | None,
    latest: dict[str, Assessed],
    last_ok: dict[str, Assessed],
    income_drop_share: float,
) -> list[RiskFlag]:
    """The risk flags a write of a record (an income snapshot, a visit) can make appear.

    * income_drop: the two latest snapshots fell by more than `income_drop_share` of the
      previous (positive) per capita; evidence [previous, latest].
    * below_monitoring_threshold: a lifted household whose latest per capita is below the
      (known) monitoring threshold of its year; evidence [latest].
    * indicator_lost: per indicator now not_ok that was ok on an earlier visit; evidence
      [the last visit where it was ok, the visit of the latest assessment].
    """
    flags: list[RiskFlag] = []
    if snapshots is not None:
        prev, last = snapshots.previous, snapshots.latest
        if prev is not None and income_dropped(
            prev.per_capita, last.per_capita, share=income_drop_share
        ):
            fall = percent(prev.per_capita - last.per_capita, prev.per_capita)
            flags.append(
                RiskFlag(
                    code=RiskCode.income_drop,
                    evidence=[str(prev.id), str(last.id)],
                    detail=Text(
                        "per-capita income fell {fall} % (threshold {value}): "
                        "{prev_per_capita} → {last_per_capita} yuan",
                        fall=fall,
                        value=_share_text(income_drop_share),
                        prev_per_capita=fen_str(prev.per_capita),
                        last_per_capita=fen_str(last.per_capita),
                    ),
                )
            )
        threshold = lines.monitoring_threshold if lines is not None else None
        if status in LIFTED_STATUSES and threshold is not None and last.per_capita < threshold:
            flags.append(
                RiskFlag(
                    code=RiskCode.below_monitoring_threshold,
                    evidence=[str(last.id)],
                    detail=Text(
                        "per-capita income {last_per_capita} yuan of {last_year} is "
                        "below the monitoring threshold {threshold} yuan",
                        last_per_capita=fen_str(last.per_capita),
                        last_year=last.year,
                        threshold=fen_str(threshold),
                    ),
                )
            )
    for name in INDICATORS:
        now_, was = latest.get(name), last_ok.get(name)
        # The latest assessment being not_ok, the latest ok one is necessarily earlier.
        if now_ is not None and now_.value == Check.not_ok.value and was is not None:
            flags.append(
                RiskFlag(
                    code=RiskCode.indicator_lost,
                    evidence=[str(was.visit_id), str(now_.visit_id)],
                    indicator=name,
                    detail=Text(
                        "{name}: ok on {was_on}, not_ok on {now_on}",
                        name=name,
                        was_on=was.visited_at.astimezone(UTC).date(),
                        now_on=now_.visited_at.astimezone(UTC).date(),
                    ),
                )
            )
    return flags


def risk_flags(
    *,
    written: list[RiskFlag],
    measures: MeasuresProgress,
    visits: VisitsProgress,
    last_visit_id: uuid.UUID | None,
    missing: tuple[list[uuid.UUID], int],
) -> list[RiskFlag]:
    """The household's risk flags (Python form), by code then evidence: those a record write
    makes appear (`written`, from `write_flags`), and

    * measure_overdue: any overdue measure; evidence the overdue measures.
    * visit_overdue: `visits.overdue`; evidence [the last visit] or [].
    * photos_missing: records of the household naming photos not held; evidence the records.
    """
    flags = list(written)
    if measures.overdue:
        flags.append(
            RiskFlag(
                code=RiskCode.measure_overdue,
                evidence=sorted(str(m.measure_id) for m in measures.overdue),
                detail=Text(
                    "{measures_overdue_count} measure(s) past their due date and "
                    "neither done nor cancelled",
                    measures_overdue_count=len(measures.overdue),
                ),
            )
        )
    if visits.overdue:
        flags.append(
            RiskFlag(
                code=RiskCode.visit_overdue,
                evidence=[str(last_visit_id)] if last_visit_id is not None else [],
                detail=(
                    Text(
                        "last visit {days} days ago (cadence {cadence} days)",
                        days=visits.days_since_last,
                        cadence=visits.cadence_days,
                    )
                    if visits.days_since_last is not None
                    else Text("never visited (cadence {cadence} days)", cadence=visits.cadence_days)
                ),
            )
        )
    records, photos = missing
    if records:
        flags.append(
            RiskFlag(
                code=RiskCode.photos_missing,
                evidence=[str(record_id) for record_id in records],
                detail=Text(
                    "{photos} photo(s) referenced by {records_count} record(s) not uploaded yet",
                    photos=photos,
                    records_count=len(records),
                ),
            )
        )
    return sorted(flags, key=lambda flag: (flag.code.value, flag.evidence))


def risk_flags_sql(
    *,
    status: Any,
    snapshots: Any,
    monitoring_threshold: Any,
    visits: Any,
    measures: Any,
    photos_missing: Any,
    now: datetime,
    settings: Settings,
) -> dict[RiskCode, ColumnElement[bool]]:
    """The risk flags (SQL form): per code, whether the household has it.

    `snapshots` has `latest` and `previous` per capita; `monitoring_threshold` is that of the
    latest snapshot's year; `visits` has `last_visited_at` and the indicator ranks; `measures`
    has `overdue` (a count of `measure_overdue`); `photos_missing` a household_id when some
    photo named by the household's records is not held.
    """
    s, v = snapshots, visits
    today = now.astimezone(UTC).date()
    numerator, denominator = share_as_fraction(settings.income_drop_share)
    # visit_overdue counts calendar days (UTC): more than the cadence since the last visit's
    # date is a last visit before midnight of (today − cadence).
    overdue_before = literal(
        datetime.combine(today - timedelta(days=settings.visit_cadence_days), time(), UTC),
        UTCDateTime,
    )

    def lost(name: str) -> ColumnElement[bool]:
        # Latest is not_ok and an ok exists (necessarily earlier); NULL (no such) is not true.
        return v[f"not_ok_{name}"] < v[f"ok_{name}"]

    return {
        RiskCode.income_drop: and_(
            s.previous > 0,
            (s.previous - s.latest) * denominator > s.previous * numerator,
        ),
        RiskCode.below_monitoring_threshold: and_(
            status.in_([st.value for st in LIFTED_STATUSES]),
            monitoring_threshold.is_not(None),
            s.latest < monitoring_threshold,
        ),
        RiskCode.indicator_lost: or_(*[lost(name) for name in INDICATORS]),
        RiskCode.measure_overdue: measures.overdue > 0,
        RiskCode.visit_overdue: or_(
            v.last_visited_at.is_(None), v.last_visited_at < overdue_before
        ),
        RiskCode.photos_missing: photos_missing.household_id.is_not(None),
    }


# --- the clearing rule: Python form --------------------------------------------------------------


@dataclass(frozen=True)
class ClearingReason:
    """One reason a case's risk cannot be cleared yet; `detail` says what is missing."""

    code: ClearingBlock
    detail: Text


@dataclass(frozen=True)
class ClearingSnapshot:
    id: uuid.UUID
    year: int
    recorded_on: date  # UTC date of recorded_at
    net_income: int
    rigid_expenses: int
    monitoring_income: int  # per capita, fen
    threshold: int | None  # monitoring threshold in force for `year`
    threshold_year: int | None

    @property
    def above(self) -> bool:
        return self.threshold is not None and self.monitoring_income > self.threshold


@dataclass(frozen=True)
class ClearingFacts:
    """What the clearing rule looks at, for one household."""

    snapshots: Sequence[ClearingSnapshot]  # latest first
    latest_visit_checks: dict[str, str] | None  # None: never visited
    latest_visit_on: date | None
    members: Sequence[MemberFacts]  # current ones
    measures: Sequence[tuple[date | None, str]]  # (start_date, status)


async def clearing_facts(session: AsyncSession, *, household: Household) -> ClearingFacts:
    """Load one household's facts (its own rows only: a few queries by household_id)."""
    hid = household.id
    rows = (
        await session.scalars(
            select(IncomeSnapshot)
            .where(col(IncomeSnapshot.household_id) == hid)
            .order_by(*latest_snapshot_order())
        )
    ).all()
    excluded = await excluded_items(session, region_code=household.village_code)
    lines = await thresholds_service.effective_thresholds(
        session, region_code=household.village_code, years={row.year for row in rows}
    )
    snapshots = [
        ClearingSnapshot(
            id=row.id,
            year=row.year,
            recorded_on=row.recorded_at.astimezone(UTC).date(),
            net_income=row.net_income,
            rigid_expenses=row.rigid_expenses,
            monitoring_income=monitoring_per_capita(row, excluded),
            threshold=lines[row.year].monitoring_threshold,
            threshold_year=lines[row.year].monitoring_threshold_year,
        )
        for row in rows
    ]
    visit = (
        await session.scalars(
            select(Visit).where(col(Visit.household_id) == hid).order_by(*visit_order()).limit(1)
        )
    ).first()
    members = await current_members(session, hid)
    measures = (
        await session.execute(
            select(col(Measure.start_date), col(Measure.status)).where(
                col(Measure.household_id) == hid
            )
        )
    ).all()
    return ClearingFacts(
        snapshots=snapshots,
        latest_visit_checks=(
            None
            if visit is None
            else {name: getattr(visit, f"check_{name}") for name in INDICATORS}
        ),
        latest_visit_on=None if visit is None else visit.visited_at.astimezone(UTC).date(),
        members=members,
        measures=[(start, status) for start, status in measures],
    )


def _income_detail(snap: ClearingSnapshot) -> Text:
    values = {
        "income": fen_str(snap.monitoring_income),
        "year": snap.year,
        "threshold": fen_str(snap.threshold or 0),
    }
    if snap.threshold_year is not None and snap.threshold_year != snap.year:
        return Text(
            "monitoring income {income} yuan per person of {year} does not exceed the "
            "monitoring threshold {threshold} yuan (carried forward from {threshold_year})",
            threshold_year=snap.threshold_year,
            **values,
        )
    return Text(
        "monitoring income {income} yuan per person of {year} does not exceed the "
        "monitoring threshold {threshold} yuan",
        **values,
    )


def judge_clearing(
    facts: ClearingFacts, *, identified_on: date, today: date, rigid_share: float
) -> list[ClearingReason]:
    """The clearing rule on one household's facts: one reason per code that holds."""
    reasons: list[ClearingReason] = []

    def add(code: ClearingBlock, detail: Text) -> None:
        reasons.append(ClearingReason(code=code, detail=detail))

    days = (today - identified_on).days
    if days < CLEARING_WAIT_DAYS:
        add(
            ClearingBlock.too_soon,
            Text(
                "identified on {identified_on}, {days} days ago: clearing needs "
                "at least {wait_days}",
                identified_on=identified_on,
                days=days,
                wait_days=CLEARING_WAIT_DAYS,
            ),
        )

    latest = facts.snapshots[0] if facts.snapshots else None
    if latest is None:
        add(ClearingBlock.income_below_threshold, Text("no income snapshot recorded"))
    elif latest.threshold is None:
        add(
            ClearingBlock.income_below_threshold,
            Text(
                "no monitoring threshold is known for {latest_year}, the latest snapshot's year",
                latest_year=latest.year,
            ),
        )
    elif not latest.above:
        add(ClearingBlock.income_below_threshold, _income_detail(latest))

    above = sorted(
        s.recorded_on for s in facts.snapshots if s.recorded_on >= identified_on and s.above
    )
    if not above:
        add(
            ClearingBlock.income_not_stable,
            Text(
                "no snapshot recorded since {identified_on} has a monitoring "
                "income above its year's threshold; two at least "
                "{wait_days} days apart are needed",
                identified_on=identified_on,
                wait_days=CLEARING_WAIT_DAYS,
            ),
        )
    elif (above[-1] - above[0]).days < CLEARING_WAIT_DAYS:
        add(
            ClearingBlock.income_not_stable,
            Text(
                "the snapshots above the threshold since {identified_on} span "
                "{days} days ({first} to {last}): two at least "
                "{wait_days} days apart are needed",
                identified_on=identified_on,
                days=(above[-1] - above[0]).days,
                first=above[0],
                last=above[-1],
                wait_days=CLEARING_WAIT_DAYS,
            ),
        )

    numerator, denominator = share_as_fraction(rigid_share)
    if (
        latest is not None
        and latest.rigid_expenses > 0
        and latest.rigid_expenses * denominator > latest.net_income * numerator
    ):
        add(
            ClearingBlock.rigid_expenses_unresolved,
            Text(
                "rigid expenses {latest_rigid_expenses} yuan exceed {value} of "
                "the net income {latest_net_income} yuan (snapshot of "
                "{latest_year})",
                latest_rigid_expenses=fen_str(latest.rigid_expenses),
                value=_share_text(rigid_share),
                latest_net_income=fen_str(latest.net_income),
                latest_year=latest.year,
            ),
        )

    missing: list[Text] = []
    if facts.latest_visit_checks is None:
        missing.append(Text("no visit recorded"))
    else:
        not_ok = [n for n in INDICATORS if facts.latest_visit_checks[n] != Check.ok.value]
        if not_ok:
            missing.append(
                Text(
                    "latest visit ({visited_on}): {indicators} not ok",
                    visited_on=facts.latest_visit_on,
                    indicators=", ".join(not_ok),
                )
            )
    if n := out_of_school(facts.members, today):
        missing.append(
            Text(
                "{n} member(s) aged {youngest}–{oldest} not in school",
                n=n,
                youngest=SCHOOL_AGES[0],
                oldest=SCHOOL_AGES[1],
            )
        )
    if n := uninsured(facts.members):
        missing.append(Text("{n} member(s) without basic medical insurance", n=n))
    if missing:
        add(ClearingBlock.guarantee_not_secured, Text.join(missing))

    applied = [s.value for s in CLEARING_MEASURE_STATUSES]
    if not any(
        start is not None and start >= identified_on and status in applied
        for start, status in facts.measures
    ):
        add(
            ClearingBlock.no_measure,
            Text(
                "no measure started on or after {identified_on} is {applied}",
                identified_on=identified_on,
                applied=" or ".join(applied),
            ),
        )

    labour = [w.value for w in WORKING_LABOUR]
    if not any(_aged(m, WORKING_AGES, today) and m.labour in labour for m in facts.members):
        add(
            ClearingBlock.no_labour,
            Text(
                "no member aged {youngest}–{oldest} (by the ID "
                "number's birth date) whose labour is {labour}: the household "
                "stays covered by guarantees and is not cleared",
                youngest=WORKING_AGES[0],
                oldest=WORKING_AGES[1],
                labour=" or ".join(labour),
            ),
        )
    return reasons


async def clearing_reasons(
    session: AsyncSession, *, household: Household, identified_on: date, today: date
) -> list[ClearingReason]:
    """Why a case of `household` identified on `identified_on` cannot be cleared on `today`
    (empty: it may be cleared). One reason per code, in the order of `ClearingBlock`."""
    facts = await clearing_facts(session, household=household)
    return judge_clearing(
        facts,
        identified_on=identified_on,
        today=today,
        rigid_share=get_settings().monitoring_rigid_expense_share,
    )


# --- the clearing rule: SQL form -----------------------------------------------------------------


@dataclass(frozen=True)
class ClearingSQL:
    """The clearing rule for a set of subjects (household_id, village_code, identified_on).

    `joined` is the subjects' FROM with their facts; `reasons` holds one condition per code,
    true when that reason holds (never NULL).
    """

    subjects: Any  # the subjects' columns
    joined: Any
    reasons: dict[ClearingBlock, ColumnElement[bool]]

    @property
    def eligible(self) -> ColumnElement[bool]:
        return and_(*[~reason for reason in self.reasons.values()])


def clearing_sql(
    subjects: FromClause,
    *,
    steps: Steps,
    thresholds: Any,
    exclusions: ExclusionSets,
    today: date,
    rigid_share: float,
) -> ClearingSQL:
    """The SQL form of `judge_clearing` for every row of `subjects`.

    `thresholds` is the `steps_cte` of `steps`; `steps` and `exclusions` (of the same region)
    give each village's threshold and excluded items by `subjects.c.village_code`.
    """
    subj = subjects.c
    village = subj.village_code
    threshold_key = steps.key(village)
    hid = subj.household_id
    snap = IncomeSnapshot
    above = and_(
        thresholds.c.monitoring_threshold.is_not(None),
        monitoring_per_capita_sql(exclusions, exclusions.key(village), snap)
        > thresholds.c.monitoring_threshold,
    )
    ranked = (
        select(
            hid.label("household_id"),
            col(snap.net_income).label("net_income"),
            col(snap.rigid_expenses).label("rigid_expenses"),
            case((above, 1), else_=0).label("above"),
            day_number(col(snap.recorded_at)).label("day"),
            (day_number(col(snap.recorded_at)) >= day_number(subj.identified_on)).label("after"),
            func.row_number().over(partition_by=hid, order_by=latest_snapshot_order()).label("rn"),
        )
        .select_from(subjects)
        .join(snap, col(snap.household_id) == hid)
        .outerjoin(thresholds, in_step(thresholds, key=threshold_key, year=col(snap.year)))
        .subquery("clearing_ranked")
    )
    r = ranked.c
    numerator, denominator = share_as_fraction(rigid_share)
    stable_day = case((and_(r.after, r.above == 1), r.day))
    snapshots = (
        select(
            r.household_id,
            func.max(case((r.rn == 1, r.above))).label("latest_above"),
            func.max(
                case(
                    (
                        and_(
                            r.rn == 1,
                            r.rigid_expenses > 0,
                            r.rigid_expenses * denominator > r.net_income * numerator,
                        ),
                        1,
                    ),
                    else_=0,
                )
            ).label("rigid_high"),
            func.min(stable_day).label("first_above"),
            func.max(stable_day).label("last_above"),
        )
        .group_by(r.household_id)
        .subquery("clearing_snapshots")
    )

    ranked_visits = (
        select(
            hid.label("household_id"),
            *[col(getattr(Visit, f"check_{name}")).label(name) for name in INDICATORS],
            func.row_number().over(partition_by=hid, order_by=visit_order()).label("rn"),
        )
        .select_from(subjects)
        .join(Visit, col(Visit.household_id) == hid)
        .subquery("clearing_ranked_visits")
    )
    latest_visit = (
        select(ranked_visits).where(ranked_visits.c.rn == 1).subquery("clearing_latest_visit")
    )

    members = member_facts_sql(select(hid), today=today, name="clearing_members")

    measures = (
        select(hid.label("household_id"), func.count().label("applied"))
        .select_from(subjects)
        .join(
            Measure,
            and_(
                col(Measure.household_id) == hid,
                col(Measure.start_date) >= subj.identified_on,
                col(Measure.status).in_([s.value for s in CLEARING_MEASURE_STATUSES]),
            ),
        )
        .group_by(hid)
        .subquery("clearing_measures")
    )

    s, v, m, a = snapshots.c, latest_visit.c, members.c, measures.c
    joined = (
        subjects.outerjoin(snapshots, s.household_id == hid)
        .outerjoin(latest_visit, v.household_id == hid)
        .outerjoin(members, m.household_id == hid)
        .outerjoin(measures, a.household_id == hid)
    )
    wait_since = literal(today - timedelta(days=CLEARING_WAIT_DAYS), Date)
    reasons: dict[ClearingBlock, ColumnElement[bool]] = {
        ClearingBlock.too_soon: subj.identified_on > wait_since,
        ClearingBlock.income_below_threshold: func.coalesce(s.latest_above, 0) == 0,
        ClearingBlock.income_not_stable: or_(
            s.first_above.is_(None), s.last_above - s.first_above < CLEARING_WAIT_DAYS
        ),
        ClearingBlock.rigid_expenses_unresolved: func.coalesce(s.rigid_high, 0) == 1,
        ClearingBlock.guarantee_not_secured: or_(
            v.household_id.is_(None),
            *[v[name] != Check.ok.value for name in INDICATORS],
            func.coalesce(m.out_of_school, 0) > 0,
            func.coalesce(m.uninsured, 0) > 0,
        ),
        ClearingBlock.no_measure: func.coalesce(a.applied, 0) == 0,
        ClearingBlock.no_labour: func.coalesce(m.labour, 0) == 0,
    }
    return ClearingSQL(subjects=subj, joined=joined, reasons=reasons)


def identified_cases(*where: ColumnElement[bool]) -> Any:
    """The subjects of the clearing rule: households with an open identified case (at most one
    each), with `where` on Household; columns household_id, village_code, identified_on,
    case_id."""
    case_ = MonitoringCase
    return (
        select(
            col(Household.id).label("household_id"),
            col(Household.village_code).label("village_code"),
            col(case_.identified_on).label("identified_on"),
            col(case_.id).label("case_id"),
        )
        .join(case_, col(case_.household_id) == col(Household.id))
        .where(
            col(case_.status).in_([s.value for s in IDENTIFIED_OPEN_STATUSES]),
            col(case_.identified_on).is_not(None),
            *where,
        )
        .subquery("clearing_subjects")
    )


async def region_clearing(
    session: AsyncSession, *, code: str, today: date
) -> dict[uuid.UUID, list[ClearingBlock]]:
    """The clearing rule in SQL for every open identified case of region `code`: its
    household's reasons (empty: may be cleared), in the order of `ClearingBlock`."""
    steps = await threshold_steps(session, code=code)
    sql = clearing_sql(
        identified_cases(within_regions([code], col(Household.village_code))),
        steps=steps,
        thresholds=steps_cte(steps.steps),
        exclusions=await exclusion_sets(session, code=code),
        today=today,
        rigid_share=get_settings().monitoring_rigid_expense_share,
    )
    codes = list(sql.reasons)
    rows = await session.execute(
        select(
            sql.subjects.household_id,
            *[case((sql.reasons[c], 1), else_=0).label(c.value) for c in codes],
        ).select_from(sql.joined)
    )
    return {row.household_id: [c for c in codes if getattr(row, c.value)] for row in rows}
