"""Webhooks: creating, reading and disabling them; their delivery log and redelivery."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.config import Settings
from app.core.errors import Conflict, InsufficientScope, InvalidInput
from app.core.i18n import Text, text_of
from app.core.pagination import PageParams, paginate
from app.regions.models import Region
from app.users.models import Role
from app.webhooks.emit import emit, iso
from app.webhooks.errors import DeliveryNotFound, WebhookDisabled, WebhookNotFound
from app.webhooks.models import Webhook, WebhookDelivery, WebhookEvent
from app.webhooks.outbox import dispatch_to
from app.webhooks.schemas import WebhookCreate
from app.webhooks.signing import new_secret
from app.webhooks.urls import check_url
from app.webhooks.vocabulary import EVENT_SCOPES, DeliveryStatus, EventType

# Active webhooks one owner may have: each one is a fan-out of every event of its region.
MAX_ACTIVE_PER_OWNER = 20


class TooManyWebhooks(Conflict):
    code = "too_many_webhooks"
    title = "Too many webhooks"


def _visible(principal: Principal) -> ColumnElement[bool]:
    """Your own webhooks; a county admin's also those of the county (its clients' included)."""
    mine = col(Webhook.owner_id) == principal.id
    if principal.role is Role.county_admin:
        return or_(mine, principal.within(col(Webhook.region_code)))
    return mine


def _region(principal: Principal, requested: str | None) -> str:
    if requested is not None:
        return requested
    if len(principal.region_codes) == 1:
        return principal.region_codes[0]
    raise InvalidInput.field(
        "body.region_code", Text("you have several regions: name the one to watch"), type="missing"
    )


async def create_webhook(
    session: AsyncSession, *, principal: Principal, data: WebhookCreate, settings: Settings
) -> Webhook:
    """Register a URL for events of a region the caller may read, with a new secret."""
    missing = sorted({EVENT_SCOPES[t] for t in data.event_types} - set(principal.scopes))
    if missing:
        challenge = f'Bearer error="insufficient_scope", scope="{" ".join(missing)}"'
        raise InsufficientScope(
            Text("these events need scopes your token lacks: {missing}", missing=" ".join(missing)),
            headers={"WWW-Authenticate": challenge},
        )
    try:
        url = check_url(data.url, allow_private=settings.webhook_allow_private_addresses)
    except ValueError as exc:
        raise InvalidInput.field("body.url", text_of(exc), type="url_refused") from None
    region_code = _region(principal, data.region_code)
    region = await session.get(Region, region_code)
    if region is None or not principal.covers(region_code):
        raise InvalidInput.field(
            "body.region_code",
            Text(
                "region {region_code} does not exist or is not at or below one of yours",
                region_code=region_code,
            ),
            type="not_yours",
        )
    active = await session.scalar(
        select(func.count())
        .select_from(Webhook)
        .where(col(Webhook.owner_id) == principal.id, col(Webhook.disabled_at).is_(None))
    )
    if (active or 0) >= MAX_ACTIVE_PER_OWNER:
        raise TooManyWebhooks(
            Text("you have {most} active webhooks: disable one first", most=MAX_ACTIVE_PER_OWNER),
            limit=MAX_ACTIVE_PER_OWNER,
        )
    webhook = Webhook(
        url=url,
        description=data.description or None,
        event_types=[t.value for t in data.event_types],
        secret=new_secret(),
        region_code=region.code,
        owner_id=principal.id,
    )
    session.add(webhook)
    await session.flush()
    return webhook


async def get_webhook(
    session: AsyncSession, *, principal: Principal, webhook_id: uuid.UUID, for_update: bool = False
) -> Webhook:
    """A webhook the caller may manage, else WebhookNotFound (existence not leaked)."""
    stmt = select(Webhook).where(col(Webhook.id) == webhook_id, _visible(principal))
    if for_update:
        stmt = stmt.with_for_update()
    webhook = await session.scalar(stmt)
    if webhook is None:
        raise WebhookNotFound(
            Text(
                "webhook {webhook_id} does not exist or is not visible to you",
                webhook_id=webhook_id,
            )
        )
    return webhook


async def list_webhooks(
    session: AsyncSession, *, principal: Principal, page: PageParams
) -> tuple[list[Webhook], str | None]:
    """The webhooks the caller may manage, oldest first."""
    return await paginate(
        session,
        select(Webhook).where(_visible(principal)),
        keys=[col(Webhook.created_at), col(Webhook.id)],
        page=page,
    )


async def disable_webhook(
    session: AsyncSession, *, principal: Principal, webhook_id: uuid.UUID
) -> Webhook:
    """Stop a webhook for good: no new events, no further deliveries (its log stays)."""
    webhook = await get_webhook(
        session, principal=principal, webhook_id=webhook_id, for_update=True
    )
    if webhook.disabled_at is None:
        webhook.disabled_at = utcnow()
        await session.flush()
    return webhook


async def list_deliveries(
    session: AsyncSession,
    *,
    principal: Principal,
    webhook_id: uuid.UUID,
    status: DeliveryStatus | None,
    page: PageParams,
) -> tuple[list[tuple[WebhookDelivery, WebhookEvent]], str | None]:
    """A webhook's deliveries with their events, newest event first."""
    webhook = await get_webhook(session, principal=principal, webhook_id=webhook_id)
    stmt = select(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook.id)
    if status is not None:
        stmt = stmt.where(col(WebhookDelivery.status) == status.value)
    rows, cursor = await paginate(
        session, stmt, keys=[col(WebhookDelivery.event_id)], page=page, descending=True
    )
    events = {
        e.id: e
        for e in await session.scalars(
            select(WebhookEvent).where(col(WebhookEvent.id).in_([d.event_id for d in rows]))
        )
    }
    return [(d, events[d.event_id]) for d in rows], cursor


async def redeliver(
    session: AsyncSession,
    *,
    principal: Principal,
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    settings: Settings,
) -> tuple[WebhookDelivery, WebhookEvent]:
    """Send a delivery's event again (whatever its state), retried for a new period."""
    webhook = await get_webhook(session, principal=principal, webhook_id=webhook_id)
    row = (
        await session.execute(
            select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.webhook_id) == webhook.id,
            )
            .with_for_update(of=WebhookDelivery)
        )
    ).first()
    if row is None:
        raise DeliveryNotFound(
            Text(
                "webhook {webhook_id} has no delivery {delivery_id}",
                webhook_id=webhook_id,
                delivery_id=delivery_id,
            )
        )
    if webhook.disabled_at is not None:
        raise WebhookDisabled(
            Text("webhook {webhook_id} is disabled: nothing is sent to it", webhook_id=webhook_id)
        )
    delivery, event = row
    now = utcnow()
    delivery.status = DeliveryStatus.pending.value
    delivery.next_attempt_at = now
    delivery.expires_at = now + timedelta(hours=settings.webhook_retry_hours)
    await session.flush()
    return delivery, event


async def send_test_event(
    session: AsyncSession, *, principal: Principal, webhook_id: uuid.UUID, settings: Settings
) -> tuple[WebhookDelivery, WebhookEvent]:
    """Queue one `webhook.test` event to this webhook only (subscribed to or not)."""
    webhook = await get_webhook(session, principal=principal, webhook_id=webhook_id)
    if webhook.disabled_at is not None:
        raise WebhookDisabled(
            Text("webhook {webhook_id} is disabled: nothing is sent to it", webhook_id=webhook_id)
        )
    now = utcnow()
    event = emit(
        session,
        type=EventType.webhook_test,
        region_code=webhook.region_code,
        household_id=None,
        occurred_at=now,
        data={
            "webhook_id": str(webhook.id),
            "requested_by": str(principal.id),
            "requested_at": iso(now),
        },
    )
    delivery = await dispatch_to(session, event, webhook_id=webhook.id, settings=settings)
    return delivery, event
