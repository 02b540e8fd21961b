"""Monitoring objects (监测对象): cases with their procedure steps, and department alerts.

A case is a field record like a visit (client UUID, revision, content hash), so a phone opens
one offline; its procedure state (status, dates, steps) is written by the server only, through
the steps. Nothing here is ever deleted.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, created_at_field, json_list, region_code_type, uuid_pk
from app.records.models import RecordColumns


class MonitoringCase(RecordColumns, table=True):
    """One household's monitoring case: from the risk found to its clearing (or rejection)."""

    __tablename__ = "monitoring_case"

    category: str = Field(max_length=24, index=True)
    risk_types: list[str] = json_list()
    found_via: str = Field(max_length=24)
    alert_id: uuid.UUID | None = Field(default=None, foreign_key="monitoring_alert.id")
    found_on: date
    description: str | None = Field(default=None, sa_type=Text)
    photos: list[dict[str, Any]] = json_list()
    # The procedure, written by the steps only.
    status: str = Field(default="proposed", max_length=32, index=True)
    identified_on: date | None = None
    cleared_on: date | None = None
    clearing_method: str | None = Field(default=None, max_length=16)
    # The household while the case is open (neither cleared nor rejected), else null: a unique
    # column, so two open cases of one household cannot be stored even by writers racing.
    open_household_id: uuid.UUID | None = Field(
        default=None, foreign_key="household.id", unique=True
    )


class MonitoringStep(SQLModel, table=True):
    """One step of a case's procedure, as taken: who, in which role, when, what was decided."""

    __tablename__ = "monitoring_step"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="monitoring_case.id", index=True)
    seq: int  # 1, 2, … per case: two steps taken at once cannot both be the next one
    step: str = Field(max_length=40)
    decision: str = Field(max_length=8)
    method: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, sa_type=Text)
    actor_id: uuid.UUID = Field(foreign_key="user_account.id")
    actor_role: str = Field(max_length=32)
    status_from: str = Field(max_length=32)
    status_to: str = Field(max_length=32)
    taken_at: datetime = created_at_field()


class MonitoringAlert(SQLModel, table=True):
    """A department's screening alert (部门筛查预警) matched to a member of a household."""

    __tablename__ = "monitoring_alert"
    __table_args__ = (
        # The same department, person, kind and date again is the same alert.
        UniqueConstraint("county_code", "department", "id_number_hash", "kind", "occurred_on"),
    )

    id: uuid.UUID = uuid_pk()
    county_code: str = Field(foreign_key="region.code", max_length=21, sa_type=region_code_type())
    department: str = Field(max_length=24)
    id_number_hash: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    amount: int | None = Field(default=None, sa_type=BigInteger)  # fen
    occurred_on: date
    note: str | None = Field(default=None, sa_type=Text)
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True)
    member_id: uuid.UUID = Field(foreign_key="household_member.id", index=True)
    village_code: str = Field(
        foreign_key="region.code", max_length=21, index=True, sa_type=region_code_type()
    )
    status: str = Field(default="open", max_length=16, index=True)
    outcome: str | None = Field(default=None, max_length=24)
    case_id: uuid.UUID | None = Field(default=None)
    verified_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    verify_note: str | None = Field(default=None, sa_type=Text)
    # Bumped on each change, as a record's revision: the change feed's version of the alert.
    revision: int = Field(default=1)
    imported_at: datetime = created_at_field()
    imported_by: uuid.UUID = Field(foreign_key="user_account.id")


class IncomeExclusion(SQLModel, table=True):
    """An income item a region leaves out of the income judged for monitoring (default: none).

    Like the thresholds, by scope: "national" or a region code; the most specific scope that
    has any rows decides the set.
    """

    __tablename__ = "monitoring_income_exclusion"

    scope: str = Field(primary_key=True, max_length=21, sa_type=region_code_type())
    item: str = Field(primary_key=True, max_length=40)
    updated_at: datetime = created_at_field()
