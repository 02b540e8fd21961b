"""Photos the server holds, and the photo references records make (whether held or not)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, utcnow


class Photo(SQLModel, table=True):
    """Bytes the server holds, addressed by their sha256."""

    __tablename__ = "photo"

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int = Field(sa_type=BigInteger)
    content_type: str = Field(max_length=64)
    stored_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class PhotoRef(SQLModel, table=True):
    """A record's reference to a photo by sha256; the bytes may arrive before or after it."""

    __tablename__ = "photo_ref"

    sha256: str = Field(primary_key=True, max_length=64)
    record_type: str = Field(primary_key=True, max_length=16)
    record_id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True)
    author_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    device_id: str | None = Field(default=None, max_length=128, index=True)
    tag: str | None = Field(default=None, max_length=32)
