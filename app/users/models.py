"""People who log in: village officers, first secretaries and county administrators."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from app.core.base import (
    UTCDateTime,
    created_at_field,
    region_code_type,
    updated_at_field,
    utcnow,
    uuid_pk,
)


class Role(StrEnum):
    officer = "officer"  # 信息员
    first_secretary = "first_secretary"  # 驻村第一书记
    town_staff = "town_staff"  # 乡镇工作人员: reads everything under its town
    county_admin = "county_admin"  # 县扶贫信息中心
    # A third-party app's service account (registered with POST /clients): read-only, no password.
    api_client = "api_client"  # 第三方应用


ROLE_LABELS = {
    Role.officer: "信息员",
    Role.first_secretary: "驻村第一书记",
    Role.town_staff: "乡镇工作人员",
    Role.county_admin: "县扶贫信息中心",
    Role.api_client: "第三方应用",
}


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: uuid.UUID = uuid_pk()
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=32)
    display_name: str = Field(default="", max_length=100)
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class UserRegion(SQLModel, table=True):
    """The villages an officer or first secretary works in; the county of an admin."""

    __tablename__ = "user_region"

    user_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True, ondelete="CASCADE")
    region_code: str = Field(
        foreign_key="region.code",
        primary_key=True,
        max_length=21,
        index=True,
        sa_type=region_code_type(),
    )


class UserRegionEnded(SQLModel, table=True):
    """A region an account was assigned and no longer is (since when): what its phone still
    holds for a village taken from it is held for the county, not refused (app/sync/held.py)."""

    __tablename__ = "user_region_ended"

    user_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True, ondelete="CASCADE")
    region_code: str = Field(primary_key=True, max_length=21, sa_type=region_code_type())
    ended_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
