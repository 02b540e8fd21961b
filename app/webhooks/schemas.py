"""Webhook bodies: what a county admin or an API client sends, and the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from app.core.types import NoNul
from app.regions.codes import CODE_PATTERN
from app.webhooks.models import Webhook, WebhookDelivery, WebhookEvent
from app.webhooks.urls import MAX_URL_LENGTH
from app.webhooks.vocabulary import OPEN_STATUSES, SUBSCRIBABLE, DeliveryStatus, EventType

_ORDER = list(EventType)
_WEBHOOK_ID = "9d3c1f7a-2b4e-4c6d-8e0f-1a2b3c4d5e6f"
_PUBLIC_EXAMPLE: dict[str, Any] = {
    "id": _WEBHOOK_ID,
    "url": "https://monitor.example.gov.cn/fieldsync/events",
    "description": "县防返贫监测平台",
    "event_types": ["household.status_changed", "household.risk_flagged"],
    "region_code": "371522000000",
    "owner_id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
    "created_at": "2026-11-23T02:00:00Z",
    "disabled_at": None,
    "disabled": False,
}
_EVENT_EXAMPLE: dict[str, Any] = {
    "id": 48213,
    "type": "household.status_changed",
    "occurred_at": "2026-11-23T03:15:42Z",
    "household_id": "6f1c2b9e-8d4a-4f3b-9c2e-5a7d1e0b3c48",
    "village_code": "371522101201",
    "data": {
        "household_id": "6f1c2b9e-8d4a-4f3b-9c2e-5a7d1e0b3c48",
        "status_from": "in_poverty",
        "status_to": "lifted",
        "version": 7,
        "changed_by": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
    },
}


def _subscribable(event_type: EventType) -> EventType:
    if event_type not in SUBSCRIBABLE:
        raise ValueError(f"{event_type.value} is sent on request (POST /webhooks/{{id}}/test)")
    return event_type


# An event type a webhook may subscribe to: the document lists those only.
Subscribable = Annotated[
    EventType,
    AfterValidator(_subscribable),
    WithJsonSchema({"type": "string", "enum": [t.value for t in SUBSCRIBABLE]}),
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://monitor.example.gov.cn/fieldsync/events",
                    "event_types": ["household.status_changed", "household.risk_flagged"],
                    "region_code": "371522000000",
                    "description": "县防返贫监测平台",
                }
            ]
        },
    )

    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)] = Field(
        description="Where events are POSTed: http or https, no credentials; a public address "
        "(checked again, after resolving the name, before every delivery)."
    )
    event_types: list[Subscribable] = Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description="The events to receive. Each needs the read scope of its data: "
        "`visit.created`, `measure.completed`, `monitoring.case_identified` and "
        "`monitoring.case_cleared` records:read, `household.status_changed` households:read, "
        "`household.risk_flagged` progress:read, `sync.batch_received` sync:read. "
        "(`webhook.test` is sent on request by `POST /webhooks/{id}/test`, to one webhook.)",
    )
    region_code: Annotated[str, StringConstraints(pattern=CODE_PATTERN)] | None = Field(
        default=None,
        description="Only events of households in this region (yours, or a town or village "
        "under it); default: your region, when you have one.",
    )
    description: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), NoNul] | None
    ) = Field(default=None, description="What the receiver is, for the list of webhooks.")

    @field_validator("event_types")
    @classmethod
    def _canonical(cls, types: list[EventType]) -> list[EventType]:
        return sorted(set(types), key=_ORDER.index)


class WebhookPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PUBLIC_EXAMPLE]})

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[EventType]
    region_code: str = Field(description="Events of households in this region only.")
    owner_id: uuid.UUID = Field(
        description="Who created it (a county admin, or an API client's account): events are "
        "those this owner may read."
    )
    created_at: datetime = Field(description="Events of writes after this moment are sent.")
    disabled_at: datetime | None
    disabled: bool = Field(description="A disabled webhook gets no more events or deliveries.")


class WebhookWithSecret(WebhookPublic):
    """The webhook and its signing secret: shown in this answer only."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**_PUBLIC_EXAMPLE, "secret": "whsec_AuWmxrySOmR+8x+Rh+toUBRWX6NLxISYxweA0RzY0O0="}
            ]
        }
    )

    secret: str = Field(
        description="The signing secret of the `webhook-signature` header (Standard Webhooks: "
        "`whsec_` + base64 of a 256-bit HMAC-SHA256 key). Shown only now: keep it with the "
        "receiver."
    )


class EventPublic(BaseModel):
    """An event, exactly as the body of its deliveries carries it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_EXAMPLE]})

    id: int = Field(
        description="Increasing in the order events happened: the same event delivered twice "
        "has the same id (deduplicate on it), and a household's events come in id order."
    )
    type: EventType
    occurred_at: datetime
    household_id: uuid.UUID | None = Field(
        description="None for sync.batch_received and webhook.test."
    )
    village_code: str = Field(
        description="The village of the event (of webhook.test: the webhook's region)."
    )
    data: dict[str, Any] = Field(
        description="Ids, codes and states of what happened; never personal data (read the "
        "objects through the API with your token for details)."
    )


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "2c5e8f1a-7b3d-4e9c-a6f0-3d1b8c2e5a74",
                    "webhook_id": _WEBHOOK_ID,
                    "event": _EVENT_EXAMPLE,
                    "status": "failed",
                    "attempts": 2,
                    "next_attempt_at": "2026-11-23T03:16:30Z",
                    "last_attempt_at": "2026-11-23T03:15:55Z",
                    "last_status_code": 503,
                    "last_error": "HTTP 503",
                    "delivered_at": None,
                    "expires_at": "2026-11-24T03:15:43Z",
                    "created_at": "2026-11-23T03:15:43Z",
                }
            ]
        }
    )

    id: uuid.UUID = Field(description="Sent as the `Fieldsync-Delivery` header.")
    webhook_id: uuid.UUID
    event: EventPublic
    status: DeliveryStatus
    attempts: int = Field(description="Requests sent so far.")
    next_attempt_at: datetime | None = Field(description="Of a pending or failed delivery.")
    last_attempt_at: datetime | None
    last_status_code: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None = Field(description="Why the last attempt failed.")
    delivered_at: datetime | None
    expires_at: datetime = Field(description="No retry after this; then `dead`.")
    created_at: datetime


def webhook_public(webhook: Webhook) -> WebhookPublic:
    return WebhookPublic(
        id=webhook.id,
        url=webhook.url,
        description=webhook.description,
        event_types=[EventType(t) for t in webhook.event_types],
        region_code=webhook.region_code,
        owner_id=webhook.owner_id,
        created_at=webhook.created_at,
        disabled_at=webhook.disabled_at,
        disabled=webhook.disabled_at is not None,
    )


def webhook_with_secret(webhook: Webhook) -> WebhookWithSecret:
    return WebhookWithSecret(**webhook_public(webhook).model_dump(), secret=webhook.secret)


def event_document(event: WebhookEvent) -> dict[str, Any]:
    """The event as delivered (JSON-ready): the body of every delivery of it."""
    assert event.id is not None
    return EventPublic(
        id=event.id,
        type=EventType(event.type),
        occurred_at=event.occurred_at,
        household_id=event.household_id,
        village_code=event.region_code,
        data=event.data,
    ).model_dump(mode="json")


def delivery_public(delivery: WebhookDelivery, event: WebhookEvent) -> DeliveryPublic:
    return DeliveryPublic(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=EventPublic.model_validate(event_document(event)),
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status in OPEN_STATUSES else None,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        delivered_at=delivery.delivered_at,
        expires_at=delivery.expires_at,
        created_at=delivery.created_at,
    )
