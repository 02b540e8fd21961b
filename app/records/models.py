"""Field records created on the phone: visits, income snapshots, support measures.

Each record has a client-generated id and a client revision; the server keeps the hash of the
content it last accepted, so a retry is recognised as such.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Text
from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, created_at_field, json_list, updated_at_field, uuid_pk


class RecordColumns(SQLModel):
    """Columns every field record has."""

    id: uuid.UUID = Field(primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True)
    revision: int
    content_hash: str = Field(max_length=64)
    author_id: uuid.UUID = Field(foreign_key="user_account.id")
    device_id: str | None = Field(default=None, max_length=128)
    received_at: datetime = created_at_field()  # server time of the first receipt
    updated_at: datetime = updated_at_field()  # server time of the last accepted revision
    updated_by: uuid.UUID = Field(foreign_key="user_account.id")


class Visit(RecordColumns, table=True):
    __tablename__ = "visit"

    visited_at: datetime = Field(sa_type=UTCDateTime, index=True)
    mode: str = Field(max_length=16)
    lat: float | None = None
    lon: float | None = None
    accuracy_m: float | None = None
    crs: str | None = Field(default=None, max_length=8)
    address: str | None = Field(default=None, max_length=500)
    findings: str | None = Field(default=None, sa_type=Text)
    requests: str | None = Field(default=None, sa_type=Text)
    follow_up: str | None = Field(default=None, sa_type=Text)
    check_food: str = Field(default="unknown", max_length=8)
    check_clothing: str = Field(default="unknown", max_length=8)
    check_education: str = Field(default="unknown", max_length=8)
    check_medical: str = Field(default="unknown", max_length=8)
    check_housing: str = Field(default="unknown", max_length=8)
    check_water: str = Field(default="unknown", max_length=8)
    photos: list[dict[str, Any]] = json_list()
    flags: list[str] = json_list()


class IncomeSnapshot(RecordColumns, table=True):
    """收入核算: amounts in integer fen (分); the totals are computed by the server."""

    __tablename__ = "income_snapshot"

    year: int = Field(index=True)
    kind: str = Field(max_length=16)
    household_size: int
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    wage_income: int = Field(default=0, sa_type=BigInteger)
    business_income: int = Field(default=0, sa_type=BigInteger)
    business_expenses: int = Field(default=0, sa_type=BigInteger)
    property_dividend: int = Field(default=0, sa_type=BigInteger)
    property_other: int = Field(default=0, sa_type=BigInteger)
    transfer_family_planning: int = Field(default=0, sa_type=BigInteger)
    transfer_dibao: int = Field(default=0, sa_type=BigInteger)
    transfer_tekun: int = Field(default=0, sa_type=BigInteger)
    transfer_pension: int = Field(default=0, sa_type=BigInteger)
    transfer_ecological: int = Field(default=0, sa_type=BigInteger)
    transfer_other: int = Field(default=0, sa_type=BigInteger)
    transfer_education_aid: int = Field(default=0, sa_type=BigInteger)
    transfer_medical_reimbursement: int = Field(default=0, sa_type=BigInteger)
    transfer_housing_subsidy: int = Field(default=0, sa_type=BigInteger)
    transfer_one_off_relief: int = Field(default=0, sa_type=BigInteger)
    # Rigid expenses (刚性支出): not subtracted from net income, judged against it for monitoring.
    medical_out_of_pocket: int = Field(default=0, sa_type=BigInteger)
    education_expenses: int = Field(default=0, sa_type=BigInteger)
    other_rigid_expenses: int = Field(default=0, sa_type=BigInteger)
    rigid_expenses: int = Field(default=0, sa_type=BigInteger)
    property_income: int = Field(default=0, sa_type=BigInteger)
    transfer_income: int = Field(default=0, sa_type=BigInteger)
    net_income: int = Field(default=0, sa_type=BigInteger)
    per_capita_income: int = Field(default=0, sa_type=BigInteger)


class Measure(RecordColumns, table=True):
    """帮扶措施, with its progress reports."""

    __tablename__ = "measure"

    category: str = Field(max_length=32, index=True)
    title: str = Field(max_length=200)
    details: str | None = Field(default=None, sa_type=Text)
    funds: int | None = Field(default=None, sa_type=BigInteger)  # fen
    funds_spent: int | None = Field(default=None, sa_type=BigInteger)  # fen
    start_date: date | None = None
    due_date: date | None = None
    status: str = Field(max_length=16, index=True)
    progress_pct: int = 0
    progress_reports: list[dict[str, Any]] = json_list()


class MeasureRevision(SQLModel, table=True):
    """Every accepted revision of a measure: its status and progress then (for the timeline)."""

    __tablename__ = "measure_revision"

    id: uuid.UUID = uuid_pk()
    measure_id: uuid.UUID = Field(foreign_key="measure.id", index=True)
    household_id: uuid.UUID = Field(foreign_key="household.id", index=True)
    revision: int
    status: str = Field(max_length=16)
    progress_pct: int
    received_at: datetime = created_at_field()
    author_id: uuid.UUID = Field(foreign_key="user_account.id")
