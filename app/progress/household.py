"""The progress of one household: income, guarantees, measures, visits, exit and risk flags.

The rules live here, in one place (the region progress applies the same ones in SQL):

* Snapshot order: **latest** = (year desc, recorded_at desc, id desc); the **baseline** is the
  earliest snapshot of kind `baseline`, else the earliest of all (year, recorded_at, id asc).
  The series keeps the latest snapshot of each year.
* Lines: `effective_thresholds` of the household's village for the latest snapshot's year.
* Guarantees: per indicator, the latest visit (visited_at desc, id desc) whose check is not
  `unknown`; never assessed → `unknown`.
* Measures: overdue = due_date < today (UTC) and status not done / cancelled.
* Visits: days since the last = calendar days (UTC) from its date to today, never below 0;
  overdue = never visited, or more days than `visit_cadence_days`; "recent" = the last 90 days.
* Exit (DOMAIN.md, household exit): blocked by no snapshot at all; by the latest per capita not
  exceeding the line of its year (no reason when the line is unknown); by each indicator whose
  latest assessment is not_ok or that was never assessed.
* Risk flags: see `_risk_flags`.

Every query filters by household_id (indexed): the cost depends on the household's own records,
never on the size of the county.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import ColumnElement, String, case, func, literal, or_, select, true, union_all
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.config import get_settings
from app.core.money import fen_str
from app.core.privacy import scrub
from app.households import service as households_service
from app.households.vocabulary import Status
from app.photos.models import Photo, PhotoRef
from app.photos.refs import not_held
from app.progress.household_schemas import (
    ExitAssessment,
    ExitBlock,
    ExitReason,
    Guarantees,
    HouseholdProgress,
    IncomeLatestYear,
    IncomeProgress,
    IndicatorAssessment,
    MeasurePhoto,
    MeasurePhotoPair,
    MeasuresProgress,
    OverdueMeasure,
    RiskCode,
    RiskFlag,
    SnapshotFigure,
    VisitsProgress,
)
from app.records.models import IncomeSnapshot, Measure, Visit
from app.records.vocabulary import INDICATORS, Check, MeasureStatus, PhotoTag, SnapshotKind
from app.thresholds import service as thresholds_service
from app.thresholds.service import Effective

# --- the rules -------------------------------------------------------------------------------

RECENT_VISIT_DAYS = 90
"""`visits.last_90_days` counts the visits with visited_at ≥ now − this many days."""

CLOSED_MEASURE_STATUSES = (MeasureStatus.done, MeasureStatus.cancelled)
"""A measure in one of these is never overdue."""

LIFTED_STATUSES = (Status.lifted, Status.lifted_no_support)
"""Households watched against the monitoring threshold (`below_monitoring_threshold`)."""

PAIR_TAGS = (PhotoTag.before, PhotoTag.after)
"""The photo tags of a measure's before/after pairs."""


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


def _share_text(share: float) -> str:
    return f"{share * 100:g} %"


# --- queries ---------------------------------------------------------------------------------


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


async def _snapshots(session: AsyncSession, household_id: uuid.UUID) -> Snapshots | None:
    """Only the rows that matter: ranked in SQL, so a long history is not loaded."""
    s = IncomeSnapshot
    ranked = (
        select(
            col(s.id),
            col(s.year),
            col(s.per_capita_income),
            func.row_number().over(order_by=latest_snapshot_order()).label("latest_rank"),
            func.row_number()
            .over(
                partition_by=col(s.year),
                order_by=(col(s.recorded_at).desc(), col(s.id).desc()),
            )
            .label("year_rank"),
            func.row_number().over(order_by=baseline_order()).label("baseline_rank"),
        )
        .where(col(s.household_id) == household_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(ranked)
            .where(
                or_(ranked.c.latest_rank <= 2, ranked.c.year_rank == 1, ranked.c.baseline_rank == 1)
            )
            .order_by(ranked.c.latest_rank)
        )
    ).all()
    if not rows:
        return None
    snap = {row.id: Snap(row.id, row.year, int(row.per_capita_income)) for row in rows}
    by_rank = {row.latest_rank: snap[row.id] for row in rows}
    baseline = next(snap[row.id] for row in rows if row.baseline_rank == 1)
    series = sorted((snap[row.id] for row in rows if row.year_rank == 1), key=lambda x: x.year)
    return Snapshots(baseline, by_rank[1], by_rank.get(2), series)


@dataclass(frozen=True)
class Assessed:
    value: str
    visit_id: uuid.UUID
    visited_at: datetime


async def _assessments(
    session: AsyncSession, household_id: uuid.UUID
) -> tuple[dict[str, Assessed], dict[str, Assessed]]:
    """Per indicator: its latest assessment, and its latest `ok` (one UNION ALL statement)."""
    parts = []
    for name in INDICATORS:
        check = col(getattr(Visit, f"check_{name}"))
        for which, condition in (
            ("latest", check != Check.unknown.value),
            ("ok", check == Check.ok.value),
        ):
            one = (
                select(
                    literal(name, String).label("indicator"),
                    literal(which, String).label("which"),
                    col(Visit.id).label("visit_id"),
                    col(Visit.visited_at).label("visited_at"),
                    check.label("value"),
                )
                .where(col(Visit.household_id) == household_id, condition)
                .order_by(*visit_order())
                .limit(1)
                .subquery()
            )
            parts.append(select(one))
    latest: dict[str, Assessed] = {}
    last_ok: dict[str, Assessed] = {}
    for row in await session.execute(union_all(*parts)):
        found = Assessed(row.value, row.visit_id, row.visited_at)
        (latest if row.which == "latest" else last_ok)[row.indicator] = found
    return latest, last_ok


@dataclass(frozen=True)
class VisitSummary:
    total: int
    recent: int
    last_id: uuid.UUID | None
    last_at: datetime | None


async def _visit_summary(
    session: AsyncSession, household_id: uuid.UUID, *, since: datetime
) -> VisitSummary:
    mine = col(Visit.household_id) == household_id
    counts = select(
        func.count().label("total"),
        func.count(case((col(Visit.visited_at) >= since, 1))).label("recent"),
    ).where(mine)
    last = (
        select(col(Visit.id).label("id"), col(Visit.visited_at).label("at"))
        .where(mine)
        .order_by(*visit_order())
        .limit(1)
        .subquery()
    )
    stats = counts.subquery()
    row = (
        await session.execute(
            select(stats.c.total, stats.c.recent, last.c.id, last.c.at).select_from(
                stats.outerjoin(last, true())
            )
        )
    ).one()
    return VisitSummary(int(row.total), int(row.recent), row.id, row.at)


async def _measures(
    session: AsyncSession, household_id: uuid.UUID, *, today: date
) -> MeasuresProgress:
    """Counts and sums by status in SQL; the overdue ones and the photo pairs, one query each."""
    mine = col(Measure.household_id) == household_id
    by_status = {status: 0 for status in MeasureStatus}
    planned = spent = total = 0
    grouped: Result[Any] = await session.execute(
        select(
            col(Measure.status).label("status"),
            func.count().label("n"),
            func.coalesce(func.sum(col(Measure.funds)), 0).label("funds"),
            func.coalesce(func.sum(col(Measure.funds_spent)), 0).label("funds_spent"),
        )
        .where(mine)
        .group_by(col(Measure.status))
    )
    for row in grouped:
        if row.status in by_status:
            by_status[MeasureStatus(row.status)] = int(row.n)
        total += int(row.n)
        planned += int(row.funds)
        spent += int(row.funds_spent)
    overdue = await session.execute(
        select(col(Measure.id), col(Measure.title), col(Measure.due_date), col(Measure.status))
        .where(mine, measure_overdue(today))
        .order_by(col(Measure.due_date), col(Measure.id))
    )
    return MeasuresProgress(
        total=total,
        by_status=by_status,
        funds_planned=fen_str(planned),
        funds_spent=fen_str(spent),
        overdue=[
            OverdueMeasure(measure_id=m_id, title=title, due_date=due, status=status)
            for m_id, title, due, status in overdue
        ],
        photo_pairs=await _photo_pairs(session, household_id),
    )


async def _photo_pairs(session: AsyncSession, household_id: uuid.UUID) -> list[MeasurePhotoPair]:
    """The household's before/after photos by measure: one query, whichever record names them."""
    rows = await session.execute(
        select(
            col(PhotoRef.measure_id),
            col(Measure.title),
            col(PhotoRef.tag),
            col(PhotoRef.sha256),
            col(Photo.sha256).is_not(None).label("held"),
        )
        .distinct()
        .join(
            Measure,
            (col(Measure.id) == col(PhotoRef.measure_id))
            & (col(Measure.household_id) == household_id),
        )
        .outerjoin(Photo, col(Photo.sha256) == col(PhotoRef.sha256))
        .where(
            col(PhotoRef.household_id) == household_id,
            col(PhotoRef.tag).in_([tag.value for tag in PAIR_TAGS]),
        )
        .order_by(col(Measure.title), col(PhotoRef.measure_id), col(PhotoRef.sha256))
    )
    pairs: dict[uuid.UUID, MeasurePhotoPair] = {}
    for row in rows:
        pair = pairs.setdefault(
            row.measure_id,
            MeasurePhotoPair(measure_id=row.measure_id, title=row.title, before=[], after=[]),
        )
        photos = pair.before if row.tag == PhotoTag.before.value else pair.after
        photos.append(MeasurePhoto(sha256=row.sha256, held=bool(row.held)))
    return list(pairs.values())


async def _missing_photos(
    session: AsyncSession, household_id: uuid.UUID
) -> tuple[list[uuid.UUID], int]:
    """The records naming photos the server does not hold, and how many such photos."""
    rows = (
        await session.execute(
            select(col(PhotoRef.record_id), col(PhotoRef.sha256))
            .where(col(PhotoRef.household_id) == household_id, not_held())
            .distinct()
        )
    ).all()
    return sorted({row.record_id for row in rows}, key=str), len({row.sha256 for row in rows})


# --- the document ----------------------------------------------------------------------------


def _figure(snap: Snap) -> SnapshotFigure:
    return SnapshotFigure(snapshot_id=snap.id, year=snap.year, per_capita=fen_str(snap.per_capita))


def _margin(per_capita: int, line: int | None) -> str | None:
    return None if line is None else fen_str(per_capita - line)


def _income(snapshots: Snapshots | None, lines: Effective | None) -> IncomeProgress:
    if snapshots is None or lines is None:
        return IncomeProgress(
            baseline=None, latest=None, change=None, change_pct=None, series=None, latest_year=None
        )
    base, latest = snapshots.baseline.per_capita, snapshots.latest.per_capita
    line, threshold = lines.poverty_line, lines.monitoring_threshold
    return IncomeProgress(
        baseline=_figure(snapshots.baseline),
        latest=_figure(snapshots.latest),
        change=fen_str(latest - base),
        # Relative to the size of the baseline: a rise from a negative income reads as a rise.
        change_pct=float(percent(latest - base, abs(base))) if base else None,
        series=[_figure(snap) for snap in snapshots.series],
        latest_year=IncomeLatestYear(
            year=snapshots.latest.year,
            poverty_line=fen_str(line) if line is not None else None,
            monitoring_threshold=fen_str(threshold) if threshold is not None else None,
            margin_to_line=_margin(latest, line),
            margin_to_threshold=_margin(latest, threshold),
        ),
    )


def _guarantees(latest: dict[str, Assessed]) -> Guarantees:
    def one(name: str) -> IndicatorAssessment:
        found = latest.get(name)
        if found is None:
            return IndicatorAssessment(value=Check.unknown, assessed_at=None, visit_id=None)
        return IndicatorAssessment(
            value=Check(found.value), assessed_at=found.visited_at, visit_id=found.visit_id
        )

    return Guarantees(**{name: one(name) for name in INDICATORS})


def _exit(
    snapshots: Snapshots | None, lines: Effective | None, latest: dict[str, Assessed]
) -> ExitAssessment:
    """DOMAIN.md's household exit rule: one reason per condition that fails."""
    reasons: list[ExitReason] = []
    if snapshots is None:
        reasons.append(ExitReason(code=ExitBlock.no_snapshot, detail="no income snapshot yet"))
    elif lines is not None and lines.poverty_line is not None:
        snap = snapshots.latest
        if snap.per_capita <= lines.poverty_line:
            reasons.append(
                ExitReason(
                    code=ExitBlock.income_below_line,
                    detail=f"per-capita income {fen_str(snap.per_capita)} yuan of {snap.year} "
                    f"does not exceed the poverty line {fen_str(lines.poverty_line)} yuan",
                )
            )
    for name in INDICATORS:
        found = latest.get(name)
        if found is None:
            reasons.append(
                ExitReason(
                    code=ExitBlock.indicator_unknown, detail=f"{name}: never assessed on a visit"
                )
            )
        elif found.value == Check.not_ok.value:
            reasons.append(
                ExitReason(
                    code=ExitBlock.indicator_not_ok,
                    detail=f"{name}: not_ok at the latest assessment",
                )
            )
    return ExitAssessment(eligible=not reasons, reasons=reasons)


def _risk_flags(
    *,
    status: str,
    snapshots: Snapshots | None,
    lines: Effective | None,
    latest: dict[str, Assessed],
    last_ok: dict[str, Assessed],
    measures: MeasuresProgress,
    visits: VisitsProgress,
    last_visit_id: uuid.UUID | None,
    missing: tuple[list[uuid.UUID], int],
    income_drop_share: float,
) -> list[RiskFlag]:
    """The household's risk flags, by code then evidence.

    * income_drop: the two latest snapshots fell by more than `income_drop_share` of the
      previous (positive) per capita; evidence [previous, latest].
    * below_monitoring_threshold: a lifted household whose latest per capita is below the
      (known) monitoring threshold of its year; evidence [latest].
    * indicator_lost: per indicator now not_ok that was ok on an earlier visit; evidence
      [the last visit where it was ok, the visit of the latest assessment].
    * measure_overdue: any overdue measure; evidence the overdue measures.
    * visit_overdue: `visits.overdue`; evidence [the last visit] or [].
    * photos_missing: records of the household naming photos not held; evidence the records.
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
                    detail=f"per-capita income fell {fall} % (threshold "
                    f"{_share_text(income_drop_share)}): {fen_str(prev.per_capita)} → "
                    f"{fen_str(last.per_capita)} yuan",
                )
            )
        threshold = lines.monitoring_threshold if lines is not None else None
        if status in LIFTED_STATUSES and threshold is not None and last.per_capita < threshold:
            flags.append(
                RiskFlag(
                    code=RiskCode.below_monitoring_threshold,
                    evidence=[str(last.id)],
                    detail=f"per-capita income {fen_str(last.per_capita)} yuan of {last.year} "
                    f"is below the monitoring threshold {fen_str(threshold)} yuan",
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
                    detail=f"{name}: ok on {was.visited_at.astimezone(UTC).date()}, not_ok on "
                    f"{now_.visited_at.astimezone(UTC).date()}",
                )
            )
    if measures.overdue:
        flags.append(
            RiskFlag(
                code=RiskCode.measure_overdue,
                evidence=sorted(str(m.measure_id) for m in measures.overdue),
                detail=f"{len(measures.overdue)} measure(s) past their due date and neither "
                "done nor cancelled",
            )
        )
    if visits.overdue:
        flags.append(
            RiskFlag(
                code=RiskCode.visit_overdue,
                evidence=[str(last_visit_id)] if last_visit_id is not None else [],
                detail=(
                    f"last visit {visits.days_since_last} days ago"
                    if visits.days_since_last is not None
                    else "never visited"
                )
                + f" (cadence {visits.cadence_days} days)",
            )
        )
    records, photos = missing
    if records:
        flags.append(
            RiskFlag(
                code=RiskCode.photos_missing,
                evidence=[str(record_id) for record_id in records],
                detail=f"{photos} photo(s) referenced by {len(records)} record(s) not uploaded yet",
            )
        )
    return sorted(flags, key=lambda flag: (flag.code.value, flag.evidence))


async def get_household_progress(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    now: datetime | None = None,
) -> HouseholdProgress:
    """Where a household of the caller's villages stands, as of `now` (default: the clock)."""
    household = await households_service.get_household(
        session, principal=principal, household_id=household_id
    )
    settings = get_settings()
    now = now or utcnow()
    today = now.astimezone(UTC).date()

    snapshots = await _snapshots(session, household.id)
    lines: Effective | None = None
    if snapshots is not None:
        year = snapshots.latest.year
        effective = await thresholds_service.effective_thresholds(
            session, region_code=household.village_code, years=[year]
        )
        lines = effective[year]
    latest, last_ok = await _assessments(session, household.id)
    summary = await _visit_summary(
        session, household.id, since=now - timedelta(days=RECENT_VISIT_DAYS)
    )
    days = days_since(summary.last_at, today=today) if summary.last_at is not None else None
    visits = VisitsProgress(
        total=summary.total,
        last_visited_at=summary.last_at,
        days_since_last=days,
        last_90_days=summary.recent,
        overdue=visit_overdue(days, cadence_days=settings.visit_cadence_days),
        cadence_days=settings.visit_cadence_days,
    )
    measures = await _measures(session, household.id, today=today)
    if not principal.may_see_pii(household.village_code):
        for overdue in measures.overdue:
            overdue.title = scrub(overdue.title)
        for pair in measures.photo_pairs:
            pair.title = scrub(pair.title)
    missing = await _missing_photos(session, household.id)
    return HouseholdProgress(
        household_id=household.id,
        as_of=today,
        income=_income(snapshots, lines),
        guarantees=_guarantees(latest),
        measures=measures,
        visits=visits,
        exit=_exit(snapshots, lines, latest),
        risk_flags=_risk_flags(
            status=household.status,
            snapshots=snapshots,
            lines=lines,
            latest=latest,
            last_ok=last_ok,
            measures=measures,
            visits=visits,
            last_visit_id=summary.last_id,
            missing=missing,
            income_drop_share=settings.income_drop_share,
        ),
    )
