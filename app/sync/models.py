"""What sync keeps: the change log the feed reads, received batches, and household conflicts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.base import (
    UTCDateTime,
    created_at_field,
    json_dict,
    json_list,
    region_code_type,
    utcnow,
    uuid_pk,
)


class ChangeCounter(SQLModel, table=True):
    """The single row of the change log's bookkeeping.

    On SQLite, where one transaction writes at a time, a writing transaction takes its numbers
    with UPDATE … RETURNING: numbers follow commit order. PostgreSQL numbers changes without it
    (see app/sync/changelog.py). On both, the horizon of pruned deletions.
    """

    __tablename__ = "sync_counter"

    id: int = Field(primary_key=True)  # always 1
    value: int = Field(default=0, sa_type=BigInteger)
    # Delete entries at or before the position (horizon_txid, horizon) were pruned: cursors from
    # before cannot be served.
    horizon: int = Field(default=0, sa_type=BigInteger)
    horizon_txid: int = Field(default=0, sa_type=BigInteger)


class Change(SQLModel, table=True):
    """The latest change of one object as seen from one village.

    One row per (object, village): `upsert` while the object is in the village, `delete` once it
    has left (a household moved away). Every change moves the row to a new, later position
    (txid, seq), so the table stays as large as the data and a first download is a read of it
    in position order.
    """

    __tablename__ = "sync_change"
    __table_args__ = (Index("ix_sync_change_region_code_txid_seq", "region_code", "txid", "seq"),)

    entity_type: str = Field(primary_key=True, max_length=16)
    entity_id: uuid.UUID = Field(primary_key=True)
    region_code: str = Field(primary_key=True, max_length=21, sa_type=region_code_type())
    household_id: uuid.UUID = Field(index=True)
    # The writing transaction on PostgreSQL, 0 on SQLite (see app/sync/changelog.py).
    txid: int = Field(default=0, sa_type=BigInteger)
    seq: int = Field(sa_type=BigInteger, unique=True)
    op: str = Field(max_length=8)
    version: int
    changed_at: datetime = created_at_field()


class SyncBatch(SQLModel, table=True):
    """A batch as received, with the response it got: a retry is answered from here."""

    __tablename__ = "sync_batch"
    __table_args__ = (Index("ix_sync_batch_device_id_received_at", "device_id", "received_at"),)

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    device_id: str = Field(foreign_key="device.id", max_length=128)
    app_version: str | None = Field(default=None, max_length=32)
    body_hash: str = Field(max_length=64)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    record_count: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    conflict: int = 0
    rejected: int = 0
    held: int = 0
    response: dict[str, Any] = json_dict()


class SyncConflict(SQLModel, table=True):
    """An offline household edit that overlapped a change made since the phone's base version."""

    __tablename__ = "sync_conflict"

    id: uuid.UUID = uuid_pk()
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True)
    village_code: str = Field(max_length=21, index=True, sa_type=region_code_type())
    batch_id: uuid.UUID = Field(foreign_key="sync_batch.id", index=True)
    device_id: str = Field(max_length=128, index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    base_version: int
    server_version: int  # the household's version when the edit arrived
    fields: list[str] = json_list()  # the overlapping fields
    client_changes: dict[str, Any] = json_dict()  # the whole edit
    server_values: dict[str, Any] = json_dict()  # of `fields`
    client_hash: str = Field(max_length=64)  # recognises the same edit sent again
    status: str = Field(default="open", max_length=16, index=True)
    resolution: str | None = Field(default=None, max_length=16)
    resolved_values: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    resolved_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class HeldRecord(SQLModel, table=True):
    """A field record a phone sent for a village taken from its author: kept whole until the
    county admin accepts it (under an author who now works there) or discards it with a reason.

    One row per record revision: the same revision sent again finds it.
    """

    __tablename__ = "held_record"
    __table_args__ = (UniqueConstraint("record_type", "record_id", "revision"),)

    id: uuid.UUID = uuid_pk()
    record_type: str = Field(max_length=16)
    record_id: uuid.UUID
    revision: int
    item: dict[str, Any] = json_dict()  # the batch item as sent
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True)
    village_code: str = Field(max_length=21, index=True, sa_type=region_code_type())
    author_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    device_id: str = Field(max_length=128)
    batch_id: uuid.UUID = Field(foreign_key="sync_batch.id", index=True)
    reason_code: str = Field(max_length=32)
    reason: str = Field(max_length=200)  # the reason in Chinese, as the phone was told
    status: str = Field(default="held", max_length=16, index=True)
    accepted_author_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    decided_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
