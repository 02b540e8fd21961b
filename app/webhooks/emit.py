"""Writing events to the outbox, in the transaction of the change they report.

Each event is one row added to the session (inserted with the transaction's next flush): the
request pays one insert per event and nothing else. Delivery happens later, in the worker
(`app.webhooks.delivery`). Payloads carry ids, codes and states, never personal data (names,
ID numbers, phones, positions): a receiver reads details through the API with its own token,
which masks what it may not see.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import exists
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.base import utcnow
from app.households.events import HouseholdStatusChanged
from app.households.models import Household
from app.monitoring.events import CaseCleared, CaseIdentified
from app.monitoring.models import MonitoringCase
from app.sync.events import BatchReceived
from app.webhooks.models import Webhook, WebhookEvent
from app.webhooks.vocabulary import EventType

_ACTIVE = "fieldsync_webhooks_active"  # session.info: (transaction, any webhook active)

Handler = TypeVar("Handler", bound=Callable[[AsyncSession, Any], Awaitable[None]])


async def any_active(session: AsyncSession) -> bool:
    """Whether any webhook is active, looked up once per transaction."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    cached = session.info.get(_ACTIVE)
    if cached is not None and cached[0] is transaction:
        return bool(cached[1])
    active = bool(await session.scalar(select(exists().where(col(Webhook.disabled_at).is_(None)))))
    session.info[_ACTIVE] = (transaction, active)
    return active


def while_any_active(handler: Handler) -> Handler:
    """A subscriber that does nothing (reads nothing, writes no event) while no webhook is
    active: an event no webhook exists for would reach nobody."""

    @functools.wraps(handler)
    async def guarded(session: AsyncSession, event: Any) -> None:
        if await any_active(session):
            await handler(session, event)

    return cast(Handler, guarded)


def iso(moment: datetime) -> str:
    """A datetime as the API writes it: UTC, with Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def emit(
    session: AsyncSession,
    *,
    type: EventType,
    region_code: str,
    household_id: uuid.UUID | None,
    data: dict[str, Any],
    occurred_at: datetime | None = None,
) -> WebhookEvent:
    """Add an event to the outbox of the current transaction."""
    event = WebhookEvent(
        type=type.value,
        household_id=household_id,
        region_code=region_code,
        data=data,
        occurred_at=occurred_at or utcnow(),
    )
    session.add(event)
    return event


def emit_for_household(
    session: AsyncSession,
    household: Household,
    *,
    type: EventType,
    occurred_at: datetime,
    data: dict[str, Any],
) -> WebhookEvent:
    """Add an event about `household`: its village's, ordered with its other events, and its
    payload led by `household_id`."""
    return emit(
        session,
        type=type,
        region_code=household.village_code,
        household_id=household.id,
        occurred_at=occurred_at,
        data={"household_id": str(household.id), **data},
    )


@while_any_active
async def on_household_status_changed(session: AsyncSession, event: HouseholdStatusChanged) -> None:
    """household.status_changed: any change of `status` of an existing household."""
    household, status_from, status_to = event.household, event.status_from, event.status_to
    actor_id = event.actor_id
    emit_for_household(
        session,
        household,
        type=EventType.household_status_changed,
        occurred_at=household.updated_at,
        data={
            "status_from": status_from,
            "status_to": status_to,
            "version": household.version,
            "changed_by": str(actor_id) if actor_id else None,
        },
    )


def _case_data(case: MonitoringCase, household: Household) -> dict[str, Any]:
    # Codes, states and dates only: never the description, photos or who the household is.
    return {
        "case_id": str(case.id),
        "village_code": household.village_code,
        "category": case.category,
        "risk_types": list(case.risk_types),
        "status": case.status,
        "found_via": case.found_via,
        "identified_on": case.identified_on.isoformat() if case.identified_on else None,
        "cleared_on": case.cleared_on.isoformat() if case.cleared_on else None,
        "clearing_method": case.clearing_method,
    }


@while_any_active
async def on_case_identified(session: AsyncSession, event: CaseIdentified) -> None:
    """monitoring.case_identified: the county approved the case (status `identified`)."""
    case, household = event.case, event.household
    emit_for_household(
        session,
        household,
        type=EventType.monitoring_case_identified,
        occurred_at=utcnow(),
        data=_case_data(case, household),
    )


@while_any_active
async def on_case_cleared(session: AsyncSession, event: CaseCleared) -> None:
    """monitoring.case_cleared: the county approved the clearing of the case's risk."""
    case, household = event.case, event.household
    emit_for_household(
        session,
        household,
        type=EventType.monitoring_case_cleared,
        occurred_at=utcnow(),
        data=_case_data(case, household),
    )


@while_any_active
async def on_batch_received(session: AsyncSession, event: BatchReceived) -> None:
    """sync.batch_received: one event per village whose households the batch named.

    A record naming no household the uploader may see counts nowhere; a batch naming none
    emits no event.
    """
    principal, batch_id, device_id = event.principal, event.batch_id, event.device_id
    received_at = event.received_at
    statuses: dict[uuid.UUID, Counter[str]] = {}
    for household_id, status in event.outcomes:
        if household_id is not None:
            statuses.setdefault(household_id, Counter())[status] += 1
    if not statuses:
        return
    rows = await session.execute(
        select(col(Household.id), col(Household.village_code)).where(
            col(Household.id).in_(list(statuses)), principal.within(col(Household.village_code))
        )
    )
    villages: dict[str, tuple[set[uuid.UUID], Counter[str]]] = {}
    for household_id, village in rows:
        households, counts = villages.setdefault(village, (set(), Counter()))
        households.add(household_id)
        counts.update(statuses[household_id])
    for village, (households, counts) in sorted(villages.items()):
        emit(
            session,
            type=EventType.sync_batch_received,
            region_code=village,
            household_id=None,
            occurred_at=received_at,
            data={
                "batch_id": str(batch_id),
                "device_id": device_id,
                "user_id": str(principal.id),
                "received_at": iso(received_at),
                "village_code": village,
                "households": len(households),
                "records": sum(counts.values()),
                "counts": dict(sorted(counts.items())),
            },
        )
