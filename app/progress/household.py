"""The progress of one household: income, guarantees, measures, visits, exit, risk flags and
monitoring.

The rules (snapshot and visit orders, the exit rule, the risk flags, the clearing rule) live in
`app.monitoring.rules`, their Python form beside the SQL form the region progress applies; this
module loads one household's facts and applies the Python forms. Besides:

* Lines: `effective_thresholds` of the household's village for the latest snapshot's year (no
  poverty line after 2020).
* Guarantees: per indicator, the latest visit (visited_at desc, id desc) whose check is not
  `unknown`; never assessed → `unknown`.
* Measures: overdue = due_date < today (UTC) and status not done / cancelled.
* Visits: days since the last = calendar days (UTC) from its date to today, never below 0;
  overdue = never visited, or more days than `visit_cadence_days`; "recent" = the last 90 days.
* Monitoring: the open case (neither cleared nor rejected: at most one); the clearing rule for
  it when it is identified (or in a clearing review), else `clearing` is null; the household's
  alerts not yet verified.

Every query filters by household_id (indexed): the cost depends on the household's own records,
never on the size of the county.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import String, case, func, literal, or_, select, true, union_all
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.config import get_settings
from app.core.i18n import Text
from app.core.money import fen_str
from app.households import service as households_service
from app.households.models import Household
from app.households.privacy import scrub
from app.monitoring import rules
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.monitoring.rules import (
    LIFTED_STATUSES,
    Assessed,
    Snap,
    Snapshots,
    baseline_order,
    days_since,
    income_dropped,
    latest_snapshot_order,
    measure_overdue,
    percent,
    visit_order,
    visit_overdue,
)
from app.monitoring.vocabulary import CLOSED_CASE_STATUSES, AlertStatus
from app.photos.models import PhotoRef
from app.photos.refs import held_for_ref, not_held
from app.progress.household_schemas import (
    ClearingAssessment,
    ClearingReasonPublic,
    Guarantees,
    HouseholdMonitoring,
    HouseholdProgress,
    IncomeLatestYear,
    IncomeProgress,
    IndicatorAssessment,
    MeasurePhoto,
    MeasurePhotoPair,
    MeasuresProgress,
    MonitoringCaseSummary,
    OpenAlert,
    OverdueMeasure,
    RiskFlag,
    SnapshotFigure,
    VisitsProgress,
)
from app.records.models import IncomeSnapshot, Measure, Visit
from app.records.vocabulary import INDICATORS, Check, MeasureStatus, PhotoTag
from app.thresholds import service as thresholds_service
from app.thresholds.service import Effective

# Some of the rules' pieces stay importable from here, as before they moved to
# app.monitoring.rules (the export and the webhook triggers read them from here).
__all__ = [
    "LIFTED_STATUSES",
    "RECENT_VISIT_DAYS",
    "get_household_progress",
    "income_dropped",
    "latest_snapshot_order",
    "percent",
    "visit_order",
]

RECENT_VISIT_DAYS = 90
"""`visits.last_90_days` counts the visits with visited_at ≥ now − this many days."""

PAIR_TAGS = (PhotoTag.before, PhotoTag.after)
"""The photo tags of a measure's before/after pairs."""


# --- queries ---------------------------------------------------------------------------------


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


async def _income_facts(
    session: AsyncSession, household: Household
) -> tuple[Snapshots | None, Effective | None]:
    """The household's snapshots that matter, and the figures of the latest one's year."""
    snapshots = await _snapshots(session, household.id)
    if snapshots is None:
        return None, None
    year = snapshots.latest.year
    effective = await thresholds_service.effective_thresholds(
        session, region_code=household.village_code, years=[year]
    )
    return snapshots, effective[year]


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
            held_for_ref().label("held"),
        )
        .distinct()
        .join(
            Measure,
            (col(Measure.id) == col(PhotoRef.measure_id))
            & (col(Measure.household_id) == household_id),
        )
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

    snapshots, lines = await _income_facts(session, household)
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
    annual = await rules.annual_snapshots(session, household=household)
    members = await rules.current_members(session, household.id)
    return HouseholdProgress(
        household_id=household.id,
        as_of=today,
        income=_income(snapshots, lines),
        guarantees=_guarantees(latest),
        measures=measures,
        visits=visits,
        exit=rules.judge_exit(
            snapshots, lines, latest, annual=annual, members=members, today=today
        ),
        risk_flags=rules.risk_flags(
            written=rules.write_flags(
                status=household.status,
                snapshots=snapshots,
                lines=lines,
                latest=latest,
                last_ok=last_ok,
                income_drop_share=settings.income_drop_share,
            ),
            measures=measures,
            visits=visits,
            last_visit_id=summary.last_id,
            missing=missing,
        ),
        monitoring=await _monitoring(session, household, today=today),
    )


async def write_risk_flags(session: AsyncSession, household: Household) -> list[RiskFlag]:
    """The household's risk flags a record write can make appear, now (`rules.write_flags`:
    the rule the progress document shows)."""
    snapshots, lines = await _income_facts(session, household)
    latest, last_ok = await _assessments(session, household.id)
    return rules.write_flags(
        status=household.status,
        snapshots=snapshots,
        lines=lines,
        latest=latest,
        last_ok=last_ok,
        income_drop_share=get_settings().income_drop_share,
    )


async def exit_reasons(
    session: AsyncSession, principal: Principal, household_id: uuid.UUID
) -> list[tuple[str, Text]]:
    """Why the exit rule does not hold for the household (none: it holds)."""
    progress = await get_household_progress(session, principal=principal, household_id=household_id)
    if progress.exit.eligible:
        return []
    return [(reason.code.value, reason.detail) for reason in progress.exit.reasons]


async def _monitoring(
    session: AsyncSession, household: Household, *, today: date
) -> HouseholdMonitoring:
    """The open case, the clearing rule for it once identified, and the open alerts."""
    closed = sorted(status.value for status in CLOSED_CASE_STATUSES)
    case_ = (
        await session.scalars(
            select(MonitoringCase)
            .where(
                col(MonitoringCase.household_id) == household.id,
                col(MonitoringCase.status).not_in(closed),
            )
            .order_by(col(MonitoringCase.found_on).desc(), col(MonitoringCase.id))
            .limit(1)
        )
    ).first()
    clearing = None
    if (
        case_ is not None
        and case_.identified_on is not None
        and case_.status in {s.value for s in rules.IDENTIFIED_OPEN_STATUSES}
    ):
        reasons = await rules.clearing_reasons(
            session, household=household, identified_on=case_.identified_on, today=today
        )
        clearing = ClearingAssessment(
            eligible=not reasons,
            reasons=[ClearingReasonPublic(code=r.code, detail=r.detail) for r in reasons],
        )
    alerts = await session.execute(
        select(
            col(MonitoringAlert.id),
            col(MonitoringAlert.department),
            col(MonitoringAlert.kind),
            col(MonitoringAlert.occurred_on),
        )
        .where(
            col(MonitoringAlert.household_id) == household.id,
            col(MonitoringAlert.status) == AlertStatus.open.value,
        )
        .order_by(col(MonitoringAlert.occurred_on), col(MonitoringAlert.id))
    )
    return HouseholdMonitoring(
        case=(
            None
            if case_ is None
            else MonitoringCaseSummary(
                id=case_.id,
                category=case_.category,
                status=case_.status,
                identified_on=case_.identified_on,
                risk_types=case_.risk_types,
            )
        ),
        clearing=clearing,
        open_alerts=[
            OpenAlert(id=a_id, department=department, kind=kind, occurred_on=occurred_on)
            for a_id, department, kind, occurred_on in alerts
        ],
    )
