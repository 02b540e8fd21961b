"""The events a field record write causes: visit.created, measure.completed, household.risk_flagged.

Subscribers of the one write rule (`app.records.service.apply_record`) that the single PUT and
sync batches share: `on_record_writing` just before a record is inserted or changed,
`on_record_written` once it is flushed, in the same transaction.

`household.risk_flagged` reports a risk flag (防返贫监测, the rules of
`app.progress.household`) that a write makes appear; only flags a write can cause, each
checked the cheap way:

* `income_drop`, `below_monitoring_threshold`: an income snapshot is created or revised, and
  the flag is present afterwards but was not before (the two latest snapshots, and the
  monitoring threshold of the latest one's year, read before and after).
* `indicator_lost`: a visit is created, or revised so that an indicator becomes `not_ok`,
  whose `not_ok` assessment of an indicator is now the household's latest one of it and comes
  right after an `ok` one (one query, only for visits with a `not_ok`).

Flags that appear with the passing of days (`visit_overdue`, `measure_overdue`) or when
photos are missing are not events: the progress document shows them. Nothing is read and no
event written while no webhook is active.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, literal, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.config import get_settings
from app.households.models import Household
from app.households.privacy import scrub
from app.progress.household import (
    LIFTED_STATUSES,
    income_dropped,
    latest_snapshot_order,
    visit_order,
)
from app.progress.household_schemas import RiskCode
from app.records.events import RecordWriting, RecordWritten
from app.records.models import IncomeSnapshot, Measure, RecordColumns, Visit
from app.records.vocabulary import INDICATORS, Check, MeasureStatus
from app.thresholds import service as thresholds_service
from app.webhooks.emit import emit_for_household, iso, while_any_active
from app.webhooks.vocabulary import EventType


@dataclass(frozen=True)
class Flag:
    """A risk flag as the progress document shows it: code, evidence ids (and the indicator)."""

    code: RiskCode
    evidence: list[str]
    indicator: str | None = None

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code.value, "evidence": self.evidence}
        if self.indicator is not None:
            out["indicator"] = self.indicator
        return out


Flags = list[Flag]


@dataclass(frozen=True)
class Before:
    """What the events of a write compare against: the record's state before it."""

    checks: dict[str, str] | None = None  # a visit's assessments (None: a new visit)
    measure_status: str | None = None  # a measure's status (None: a new measure)
    income_flags: Flags | None = None  # a snapshot's household's income flags


_NOTE = "webhooks"  # this module's key in `RecordWriting.notes`


@while_any_active
async def on_record_writing(session: AsyncSession, event: RecordWriting) -> None:
    """Subscriber: note what the events of the coming write compare against."""
    event.notes[_NOTE] = await _before(session, event.model, event.record, event.household)


async def _before(
    session: AsyncSession, model: type[Any], record: RecordColumns | None, household: Household
) -> Before:
    if model is Visit:
        if isinstance(record, Visit):
            return Before(checks={name: getattr(record, f"check_{name}") for name in INDICATORS})
        return Before()
    if model is Measure:
        return Before(measure_status=record.status if isinstance(record, Measure) else None)
    if model is IncomeSnapshot:
        return Before(income_flags=await _income_flags(session, household))
    return Before()


@while_any_active
async def on_record_written(session: AsyncSession, event: RecordWritten) -> None:
    """Subscriber: emit the events of a write (a record created, or changed to a new revision)."""
    record, household, created = event.record, event.household, event.created
    before: Before = event.writing.notes.get(_NOTE, Before())
    if isinstance(record, Visit):
        if created:
            _visit_created(session, record, household)
        lost = [
            name
            for name in INDICATORS
            if getattr(record, f"check_{name}") == Check.not_ok.value
            and (before.checks is None or before.checks[name] != Check.not_ok.value)
        ]
        if lost:
            flags = await _indicators_lost(session, record, lost)
            _risk_flagged(session, household, flags, cause=("visit", record))
    elif isinstance(record, Measure):
        if record.status == MeasureStatus.done.value and before.measure_status != record.status:
            _measure_completed(session, record, household)
    elif isinstance(record, IncomeSnapshot) and before.income_flags is not None:
        after = await _income_flags(session, household)
        known = {flag.code for flag in before.income_flags}
        new = [flag for flag in after if flag.code not in known]
        _risk_flagged(session, household, new, cause=("income_snapshot", record))


def _visit_created(session: AsyncSession, visit: Visit, household: Household) -> None:
    emit_for_household(
        session,
        household,
        type=EventType.visit_created,
        occurred_at=visit.received_at,
        data={
            "visit_id": str(visit.id),
            "revision": visit.revision,
            "visited_at": iso(visit.visited_at),
            "mode": visit.mode,
            "checks": {name: getattr(visit, f"check_{name}") for name in INDICATORS},
            "author_id": str(visit.author_id),
        },
    )


def _measure_completed(session: AsyncSession, measure: Measure, household: Household) -> None:
    emit_for_household(
        session,
        household,
        type=EventType.measure_completed,
        occurred_at=measure.updated_at,
        data={
            "measure_id": str(measure.id),
            "revision": measure.revision,
            "category": measure.category,
            # Payloads carry no personal data, whatever the receiver's scopes.
            "title": scrub(measure.title),
            "progress_pct": measure.progress_pct,
            "updated_by": str(measure.updated_by),
        },
    )


def _risk_flagged(
    session: AsyncSession,
    household: Household,
    flags: Flags,
    *,
    cause: tuple[str, RecordColumns],
) -> None:
    if not flags:
        return
    record_type, record = cause
    emit_for_household(
        session,
        household,
        type=EventType.household_risk_flagged,
        occurred_at=record.updated_at,
        data={
            "flags": [flag.document() for flag in flags],
            "cause": {"type": record_type, "id": str(record.id), "revision": record.revision},
        },
    )


async def _income_flags(session: AsyncSession, household: Household) -> Flags:
    """income_drop and below_monitoring_threshold of the household now (progress's rules)."""
    await session.flush()  # a batch flushes at its end: what it wrote so far counts
    rows = (
        await session.execute(
            select(
                col(IncomeSnapshot.id),
                col(IncomeSnapshot.year),
                col(IncomeSnapshot.per_capita_income),
            )
            .where(col(IncomeSnapshot.household_id) == household.id)
            .order_by(*latest_snapshot_order())
            .limit(2)
        )
    ).all()
    if not rows:
        return []
    flags: Flags = []
    latest, previous = rows[0], (rows[1] if len(rows) > 1 else None)
    share = get_settings().income_drop_share
    if previous is not None and income_dropped(
        int(previous.per_capita_income), int(latest.per_capita_income), share=share
    ):
        flags.append(Flag(RiskCode.income_drop, [str(previous.id), str(latest.id)]))
    if household.status in LIFTED_STATUSES:
        lines = await thresholds_service.effective_thresholds(
            session, region_code=household.village_code, years=[latest.year]
        )
        threshold = lines[latest.year].monitoring_threshold
        if threshold is not None and int(latest.per_capita_income) < threshold:
            flags.append(Flag(RiskCode.below_monitoring_threshold, [str(latest.id)]))
    return flags


async def _indicators_lost(session: AsyncSession, visit: Visit, names: list[str]) -> Flags:
    """indicator_lost, if `visit` is now the latest assessment of one of `names` (not_ok on it)
    and the one before it was ok: evidence [that visit, this one]."""
    await session.flush()
    parts = []
    for name in names:
        check = col(getattr(Visit, f"check_{name}"))
        two = (
            select(
                literal(name, String).label("indicator"),
                col(Visit.id).label("visit_id"),
                col(Visit.visited_at).label("visited_at"),
                check.label("value"),
            )
            .where(col(Visit.household_id) == visit.household_id, check != Check.unknown.value)
            .order_by(*visit_order())
            .limit(2)
            .subquery()
        )
        parts.append(two.select())
    found: dict[str, list[Any]] = {}
    for row in await session.execute(union_all(*parts)):
        found.setdefault(row.indicator, []).append(row)
    flags: Flags = []
    for name in names:
        latest_two = sorted(
            found.get(name, []),
            key=lambda r: (r.visited_at, uuid.UUID(str(r.visit_id))),
            reverse=True,
        )
        if (
            len(latest_two) == 2
            and uuid.UUID(str(latest_two[0].visit_id)) == visit.id
            and latest_two[1].value == Check.ok.value
        ):
            evidence = [str(latest_two[1].visit_id), str(visit.id)]
            flags.append(Flag(RiskCode.indicator_lost, evidence, indicator=name))
    return flags
