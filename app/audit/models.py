"""The audit log: one row per write or sign-in, each chained to the one before by its hash."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, json_dict, region_code_type


class AuditEntry(SQLModel, table=True):
    """Who (user, device, address) did what (action on an object, fields masked) and when.

    `seq` numbers the chain without gaps; `hash` is the SHA-256 of the entry's fields and
    `prev_hash` (see `app.audit.chain`), so an edited, deleted or inserted row breaks it.
    """

    __tablename__ = "audit_entry"

    id: uuid.UUID = Field(primary_key=True)
    seq: int = Field(sa_type=BigInteger, unique=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor_id: uuid.UUID | None = Field(default=None, index=True)
    actor_role: str | None = Field(default=None, max_length=32)
    device_id: str | None = Field(default=None, max_length=128)
    client_address: str | None = Field(default=None, max_length=64)
    # sign_in, sign_in_failed, create, update, delete
    action: str = Field(max_length=16)
    entity_type: str | None = Field(default=None, max_length=32)
    entity_id: str | None = Field(default=None, max_length=64)
    household_id: uuid.UUID | None = Field(default=None)
    # Where it happened (a village for a household's data, the actor's region otherwise): what
    # the county admin's list filters on.
    region_code: str | None = Field(default=None, sa_type=region_code_type(), index=True)
    # Field: value, personal data masked (or "***" for secrets).
    changes: dict[str, Any] = json_dict()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
