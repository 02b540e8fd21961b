"""The registered household (建档立卡户) and its members."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from app.core.base import (
    UTCDateTime,
    created_at_field,
    json_dict,
    json_list,
    region_code_type,
    updated_at_field,
    uuid_pk,
)


class Household(SQLModel, table=True):
    __tablename__ = "household"

    id: uuid.UUID = uuid_pk()
    number: str = Field(max_length=32, unique=True)  # 户编号, national id of the household
    village_code: str = Field(
        foreign_key="region.code", max_length=21, index=True, sa_type=region_code_type()
    )
    group_name: str | None = Field(default=None, max_length=100)  # 自然村/组
    head_name: str = Field(max_length=100, index=True)
    phone: str | None = Field(default=None, max_length=32)
    # registered (建档立卡) or ordinary (一般农户): an ordinary household has no status, attribute,
    # cause or identification year of the register.
    origin: str = Field(default="registered", max_length=16, index=True)
    attribute: str | None = Field(default=None, max_length=32, index=True)
    status: str | None = Field(default=None, max_length=32, index=True)
    main_cause: str | None = Field(default=None, max_length=32)
    other_causes: list[str] = json_list()
    identification_standard: str = Field(default="national", max_length=32)
    identified_year: int | None = None
    planned_exit_year: int | None = None
    exit_year: int | None = None
    pairing_cadres: list[dict[str, Any]] = json_list()
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Member(SQLModel, table=True):
    __tablename__ = "household_member"

    id: uuid.UUID = uuid_pk()
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    id_number: str | None = Field(default=None, max_length=18)
    # HMAC of the ID number: exact search without a plain-text index on personal data.
    id_number_hash: str | None = Field(default=None, max_length=64, index=True)
    birth_date: date | None = None
    relation: str = Field(max_length=32)
    health: str = Field(default="healthy", max_length=32)
    labour: str = Field(default="normal", max_length=32)
    in_school: bool = False
    medical_insurance: bool = False
    added_reason: str = Field(default="initial", max_length=32)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    removed_reason: str | None = Field(default=None, max_length=32)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class HouseholdChange(SQLModel, table=True):
    """One change of a household record: which fields went from what to what, by whom.

    Kept for the timeline (status changes) and for merging offline edits field by field.
    """

    __tablename__ = "household_change"

    id: uuid.UUID = uuid_pk()
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True, ondelete="CASCADE")
    version: int  # the household's version after the change
    changed_at: datetime = created_at_field()
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    changes: dict[str, Any] = json_dict()  # field: [old, new]
    status_from: str | None = Field(default=None, max_length=32)
    status_to: str | None = Field(default=None, max_length=32)
    # Why the county admin set a status the exit rule did not support.
    override_reason: str | None = Field(default=None, sa_type=Text)
