"""Event ids only grow: receivers deduplicate on `Fieldsync-Event-Id`, so an id freed by pruning
(or by dropping an event no webhook wanted) must never be given to a new event."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.webhooks.emit import emit
from app.webhooks.models import WebhookEvent
from app.webhooks.vocabulary import EventType
from tests.builders import VILLAGE_A1, World


async def _new_event(session: AsyncSession) -> int:
    event = emit(
        session,
        type=EventType.sync_batch_received,
        region_code=VILLAGE_A1,
        household_id=None,
        data={},
    )
    await session.flush()
    assert event.id is not None
    return event.id


async def test_the_id_of_a_deleted_event_is_not_used_again(
    session: AsyncSession, world: World
) -> None:
    first = await _new_event(session)
    last = await _new_event(session)
    await session.execute(delete(WebhookEvent).where(WebhookEvent.id == last))

    assert await _new_event(session) > last > first
