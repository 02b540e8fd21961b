"""The events a field record write causes: visit.created, measure.completed, household.risk_flagged.

Subscribers of the one write rule (`app.records.service.apply_record`) that the single PUT and
sync batches share: `on_record_writing` just before a record is inserted or changed,
`on_record_written` once it is flushed, in the same transaction.

`household.risk_flagged` reports the risk flags (防返贫监测) a write makes appear: the
household's flags a record write can raise (`app.progress.household.write_risk_flags`, the rule
the progress document shows: `income_drop`, `below_monitoring_threshold`, `indicator_lost`),
read before and after the write, and those present after but not before (by code, and by
indicator). They are read for an income snapshot, and for a visit that assesses an indicator
`not_ok` (no other visit can make a flag appear).

Flags that appear with the passing of days (`visit_overdue`, `measure_overdue`) or when
photos are missing are not events: the progress document shows them. Nothing is read and no
event written while no webhook is active.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.households.models import Household
from app.households.privacy import scrub
from app.progress.household import write_risk_flags
from app.progress.household_schemas import RiskFlag
from app.records.events import RecordWriting, RecordWritten
from app.records.models import IncomeSnapshot, Measure, RecordColumns, Visit
from app.records.vocabulary import INDICATORS, Check, MeasureStatus
from app.webhooks.emit import emit_for_household, iso, while_any_active
from app.webhooks.vocabulary import EventType


@dataclass(frozen=True)
class Before:
    """What the events of a write compare against: the record's state before it."""

    measure_status: str | None = None  # a measure's status (None: a new measure)
    flags: list[RiskFlag] | None = None  # the household's write flags (None: not read)


def _key(flag: RiskFlag) -> tuple[str, str | None]:
    return flag.code.value, flag.indicator


def _document(flag: RiskFlag) -> dict[str, Any]:
    out: dict[str, Any] = {"code": flag.code.value, "evidence": flag.evidence}
    if flag.indicator is not None:
        out["indicator"] = flag.indicator
    return out


def _may_raise_flags(model: type[Any], data: Any) -> bool:
    """Whether writing `data` can make a risk flag appear (see the module's docstring)."""
    if model is IncomeSnapshot:
        return True
    if model is Visit and data is not None:
        return any(value == Check.not_ok for value in data.checks.model_dump().values())
    return False


_NOTE = "webhooks"  # this module's key in `RecordWriting.notes`


@while_any_active
async def on_record_writing(session: AsyncSession, event: RecordWriting) -> None:
    """Subscriber: note what the events of the coming write compare against."""
    raises = _may_raise_flags(event.model, event.data)
    if raises:
        await session.flush()  # a batch flushes at its end: what it wrote so far counts
    before = Before(
        measure_status=event.record.status if isinstance(event.record, Measure) else None,
        flags=await write_risk_flags(session, event.household) if raises else None,
    )
    event.notes[_NOTE] = before


@while_any_active
async def on_record_written(session: AsyncSession, event: RecordWritten) -> None:
    """Subscriber: emit the events of a write (a record created, or changed to a new revision)."""
    record, household, created = event.record, event.household, event.created
    before: Before = event.writing.notes.get(_NOTE, Before())
    if isinstance(record, Visit) and created:
        _visit_created(session, record, household)
    done = MeasureStatus.done.value
    if isinstance(record, Measure) and record.status == done != before.measure_status:
        _measure_completed(session, record, household)
    if before.flags is not None:
        await session.flush()  # a batch flushes at its end: what it wrote so far counts
        known = {_key(flag) for flag in before.flags}
        new = [f for f in await write_risk_flags(session, household) if _key(f) not in known]
        _risk_flagged(session, household, new, cause=(event.record_type, record))


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
    flags: list[RiskFlag],
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
            "flags": [_document(flag) for flag in flags],
            "cause": {"type": record_type, "id": str(record.id), "revision": record.revision},
        },
    )
