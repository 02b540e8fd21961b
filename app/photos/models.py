"""Photos the server holds, the photo references records make, and resumable uploads."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Text
from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, utcnow


class Photo(SQLModel, table=True):
    """Bytes the server holds, addressed by their sha256, and what was read from them."""

    __tablename__ = "photo"

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int = Field(sa_type=BigInteger)
    content_type: str = Field(max_length=64)
    stored_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lat: float | None = None
    lon: float | None = None
    # The household it was uploaded for and by whom: who may read it before a record names it.
    household_id: uuid.UUID | None = Field(default=None, foreign_key="household.id", index=True)
    uploaded_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")


class PhotoHolder(SQLModel, table=True):
    """Who has sent the bytes of a photo, for which household: proof of possession.

    A record naming a sha256 does not prove its author has the photo; sending the bytes does.
    A photo is readable in the villages of the households it was sent for, and through the
    records of the users who sent it.
    """

    __tablename__ = "photo_holder"

    sha256: str = Field(foreign_key="photo.sha256", primary_key=True, max_length=64)
    household_id: uuid.UUID = Field(foreign_key="household.id", primary_key=True, index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True, index=True)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


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
    # The support measure the photo documents (before/after evidence), if any.
    measure_id: uuid.UUID | None = Field(default=None, index=True)


class Upload(SQLModel, table=True):
    """A tus upload: its bytes so far are parts in the staging area of the photo store."""

    __tablename__ = "upload"

    id: str = Field(primary_key=True, max_length=32)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    household_id: uuid.UUID = Field(foreign_key="household.id")
    sha256: str = Field(max_length=64, index=True)
    length: int = Field(sa_type=BigInteger)
    offset: int = Field(default=0, sa_type=BigInteger)
    metadata_header: str = Field(default="", sa_type=Text)
    filename: str | None = Field(default=None, max_length=255)
    filetype: str | None = Field(default=None, max_length=100)
    visit_id: uuid.UUID | None = None
    tag: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # How many parts the bytes so far are in (bounded: each is an object and a row).
    parts: int = 0
    # A request finishing the upload claims it until then (others leave it alone).
    finishing_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UploadPart(SQLModel, table=True):
    """Bytes [start, start + size) of an upload, stored under `key`."""

    __tablename__ = "upload_part"

    upload_id: str = Field(
        foreign_key="upload.id", primary_key=True, max_length=32, ondelete="CASCADE"
    )
    start: int = Field(primary_key=True, sa_type=BigInteger)
    size: int = Field(sa_type=BigInteger)
    key: str = Field(max_length=200)
