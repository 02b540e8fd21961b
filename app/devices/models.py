"""A phone, known by the device_id the app generates once and sends at login and with batches."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, created_at_field


class Device(SQLModel, table=True):
    __tablename__ = "device"

    id: str = Field(primary_key=True, max_length=128)
    # The user who last logged in or synced on it.
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    app_version: str | None = Field(default=None, max_length=32)
    first_seen_at: datetime = created_at_field()
    last_seen_at: datetime = Field(sa_type=UTCDateTime, index=True)  # any login, refresh or sync
    last_sync_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # batch or pull
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
