"""Webhook subscriptions, the outbox of events, and the deliveries of events to webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.base import (
    UTCDateTime,
    created_at_field,
    json_dict,
    json_list,
    region_code_type,
    uuid_pk,
)

# A 64-bit sequence on PostgreSQL; SQLite numbers rows only through INTEGER PRIMARY KEY.
EVENT_ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class Webhook(SQLModel, table=True):
    """A URL that receives the events of some types in one region.

    `secret` is the HMAC key the server signs deliveries with. It is stored as it is, not
    hashed: signing needs the key itself (unlike a password, which is only ever compared). It
    is shown once, in the answer to the creation; it authenticates fieldsync to the receiver
    and grants nothing in fieldsync, and payloads carry ids and states only (no personal data).
    """

    __tablename__ = "webhook"

    id: uuid.UUID = uuid_pk()
    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=200)
    event_types: list[str] = json_list()
    secret: str = Field(max_length=100)
    # Events of households in this region (at or below the owner's), as the owner may see them.
    region_code: str = Field(
        foreign_key="region.code", max_length=21, index=True, sa_type=region_code_type()
    )
    owner_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    created_at: datetime = created_at_field()
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookEvent(SQLModel, table=True):
    """The outbox: one row per event, inserted in the transaction of the change it reports.

    `id` numbers events in commit order (writes hold the database's write lock), so it orders
    the events of a household. The worker fans each event out to the matching webhooks and
    sets `dispatched_at`; an event no webhook wanted is deleted then.
    """

    __tablename__ = "webhook_event"
    __table_args__ = (
        Index("ix_webhook_event_dispatched_at_id", "dispatched_at", "id"),
        Index("ix_webhook_event_household_id_id", "household_id", "id"),
        # Ids are never reused once events are deleted (SQLite reuses the highest rowid
        # without it): receivers deduplicate on them.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=EVENT_ID_TYPE)
    type: str = Field(max_length=40)
    household_id: uuid.UUID | None = None  # none for sync.batch_received
    region_code: str = Field(max_length=21, sa_type=region_code_type())  # the village
    data: dict[str, Any] = json_dict()
    occurred_at: datetime = created_at_field()
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One event to one webhook: its state, attempts and the receiver's last answer.

    A delivery is attempted only when no earlier event of the same household is still open
    (pending or failed) for the same webhook: that is what keeps each household's events in
    order. `claimed_until` is the lease of the worker sending it now.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index(
            "ix_webhook_delivery_webhook_id_household_id_event_id",
            "webhook_id",
            "household_id",
            "event_id",
        ),
        Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: uuid.UUID = uuid_pk()
    webhook_id: uuid.UUID = Field(foreign_key="webhook.id")
    event_id: int = Field(foreign_key="webhook_event.id", sa_type=EVENT_ID_TYPE)
    household_id: uuid.UUID | None = None  # the event's: the ordering key
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)  # no retry after this: dead
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()
