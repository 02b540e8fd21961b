"""The outbox: events fanned out to the webhooks that want them, and old ones pruned.

The worker (`app.webhooks.delivery`) fans out before it claims. Undispatched events, oldest
first, each get a delivery row per matching webhook (type, region, and what its owner may read
at that moment) and are marked dispatched, in one short transaction; events nobody wants are
deleted. Rows are taken with FOR UPDATE SKIP LOCKED on PostgreSQL (the write lock serialises
SQLite), so several workers never fan one event out twice (and a unique (webhook, event)
constraint would refuse it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import ROLE_SCOPES
from app.clients.models import ApiClient
from app.core.base import utcnow
from app.core.config import Settings
from app.core.db import Transactions
from app.regions import codes
from app.users.models import Role, User, UserRegion
from app.webhooks.models import Webhook, WebhookDelivery, WebhookEvent
from app.webhooks.vocabulary import EVENT_SCOPES, OPEN_STATUSES, DeliveryStatus, EventType

FANOUT_BATCH = 500


@dataclass(frozen=True)
class Subscriber:
    """An active webhook and what its owner may read now."""

    webhook_id: uuid.UUID
    event_types: frozenset[str]
    region_code: str
    created_at: datetime
    owner_regions: tuple[str, ...]
    owner_scopes: frozenset[str]

    def wants(self, event: WebhookEvent) -> bool:
        try:
            scope = EVENT_SCOPES.get(EventType(event.type))
        except ValueError:
            return False
        return (
            scope is not None  # `webhook.test` goes to one webhook, never fanned out
            and event.type in self.event_types
            and event.occurred_at >= self.created_at
            and scope in self.owner_scopes
            and codes.is_within(event.region_code, self.region_code)
            and any(codes.is_within(event.region_code, own) for own in self.owner_regions)
        )


async def _subscribers(session: Any) -> list[Subscriber]:
    rows = (
        await session.execute(
            select(Webhook, User.role)
            .join(User, col(User.id) == col(Webhook.owner_id))
            .where(col(Webhook.disabled_at).is_(None), col(User.is_active).is_(True))
        )
    ).all()
    if not rows:
        return []
    owners = list({webhook.owner_id for webhook, _ in rows})
    regions: dict[uuid.UUID, list[str]] = {}
    for user_id, code in await session.execute(
        select(col(UserRegion.user_id), col(UserRegion.region_code)).where(
            col(UserRegion.user_id).in_(owners)
        )
    ):
        regions.setdefault(user_id, []).append(code)
    client_scopes = {
        user_id: frozenset(scopes) if disabled_at is None else frozenset()
        for user_id, scopes, disabled_at in await session.execute(
            select(col(ApiClient.user_id), col(ApiClient.scopes), col(ApiClient.disabled_at)).where(
                col(ApiClient.user_id).in_(owners)
            )
        )
    }
    out = []
    for webhook, role in rows:
        if role == Role.api_client.value:
            scopes = client_scopes.get(webhook.owner_id, frozenset())
        else:
            scopes = frozenset(ROLE_SCOPES.get(Role(role), ()))
        out.append(
            Subscriber(
                webhook_id=webhook.id,
                event_types=frozenset(webhook.event_types),
                region_code=webhook.region_code,
                created_at=webhook.created_at,
                owner_regions=tuple(regions.get(webhook.owner_id, ())),
                owner_scopes=scopes,
            )
        )
    return out


def _undispatched() -> Select[Any]:
    return (
        select(WebhookEvent)
        .where(col(WebhookEvent.dispatched_at).is_(None))
        .order_by(col(WebhookEvent.id))
    )


def _delivery(
    webhook_id: uuid.UUID, event: WebhookEvent, now: datetime, settings: Settings
) -> dict[str, Any]:
    """The row of a new delivery of `event` to a webhook: pending, due now."""
    return {
        "id": uuid.uuid4(),
        "webhook_id": webhook_id,
        "event_id": event.id,
        "household_id": event.household_id,
        "status": DeliveryStatus.pending.value,
        "attempts": 0,
        "next_attempt_at": now,
        "expires_at": now + timedelta(hours=settings.webhook_retry_hours),
        "created_at": now,
    }


async def dispatch_to(
    session: AsyncSession, event: WebhookEvent, *, webhook_id: uuid.UUID, settings: Settings
) -> WebhookDelivery:
    """Fan an event out to one webhook only, now, in the caller's transaction (a test event):
    the worker finds it dispatched and sends its delivery as it sends any other."""
    now = utcnow()
    event.dispatched_at = now
    session.add(event)
    await session.flush()
    assert event.id is not None
    delivery = WebhookDelivery(**_delivery(webhook_id, event, now, settings))
    session.add(delivery)
    await session.flush()
    return delivery


async def dispatch_events(
    transactions: Transactions, settings: Settings, *, limit: int = FANOUT_BATCH
) -> int:
    """Fan the oldest undispatched events out to their webhooks; how many were handled."""
    async with transactions(writing=False) as session:
        if (
            await session.scalar(_undispatched().with_only_columns(col(WebhookEvent.id)).limit(1))
            is None
        ):
            return 0
    async with transactions(writing=True) as session:
        events = list(
            await session.scalars(_undispatched().limit(limit).with_for_update(skip_locked=True))
        )
        if not events:
            return 0
        subscribers = await _subscribers(session)
        now = utcnow()
        rows: list[dict[str, Any]] = []
        wanted: list[int] = []
        unwanted: list[int] = []
        for event in events:
            assert event.id is not None
            matches = [s for s in subscribers if s.wants(event)]
            (wanted if matches else unwanted).append(event.id)
            rows.extend(_delivery(s.webhook_id, event, now, settings) for s in matches)
        if rows:
            await session.execute(insert(WebhookDelivery), rows)
        if wanted:
            await session.execute(
                update(WebhookEvent)
                .where(col(WebhookEvent.id).in_(wanted))
                .values(dispatched_at=now)
            )
        if unwanted:
            await session.execute(delete(WebhookEvent).where(col(WebhookEvent.id).in_(unwanted)))
    return len(events)


async def prune(transactions: Transactions, *, older_than: datetime) -> tuple[int, int]:
    """Delete finished deliveries older than `older_than`, then events with no delivery left.

    Returns (deliveries, events) deleted.
    """
    async with transactions(writing=True) as session:
        deliveries = await session.execute(
            delete(WebhookDelivery).where(
                col(WebhookDelivery.status).not_in(OPEN_STATUSES),
                col(WebhookDelivery.created_at) < older_than,
            )
        )
        events = await session.execute(
            delete(WebhookEvent).where(
                col(WebhookEvent.dispatched_at).is_not(None),
                col(WebhookEvent.occurred_at) < older_than,
                ~exists().where(col(WebhookDelivery.event_id) == col(WebhookEvent.id)),
            )
        )
    return int(deliveries.rowcount or 0), int(events.rowcount or 0)  # type: ignore[attr-defined]
