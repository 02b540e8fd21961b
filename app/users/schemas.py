"""User bodies: what a county admin (or the CLI) sends, and what it sees (never a password)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.core.i18n import Text
from app.core.types import NoNul
from app.regions.codes import CODE_PATTERN
from app.users.models import ROLE_LABELS, Role, User

# The one password rule (the API and `fieldsync create-user`); kept out of reprs, write-only.
Password = Annotated[
    str,
    StringConstraints(min_length=8, max_length=1024),
    Field(
        repr=False,
        description="At least 8 characters. Never shown again, never logged.",
        json_schema_extra={"format": "password", "writeOnly": True},
    ),
]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), NoNul]
RegionCodes = Annotated[
    list[Annotated[str, StringConstraints(pattern=CODE_PATTERN)]],
    Field(
        min_length=1,
        max_length=200,
        description="Officers and first secretaries: their villages; town staff: one town; a "
        "county admin: the county. Each in your county.",
    ),
]

_USER_ID = "5a7e2c91-3f4b-4d8e-a1c6-9b0d2e4f6a18"
_PUBLIC_EXAMPLE: dict[str, Any] = {
    "id": _USER_ID,
    "username": "officer.wangzhuang",
    "display_name": "王庄村 信息员 张伟",
    "role": "officer",
    "role_label": "信息员",
    "is_active": True,
    "regions": ["371522101201"],
    "created_at": "2026-11-23T02:00:00Z",
    "updated_at": "2026-11-23T02:00:00Z",
}


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "officer.wangzhuang",
                    "display_name": "王庄村 信息员 张伟",
                    "role": "officer",
                    "password": "initial-password-2026",
                    "regions": ["371522101201"],
                }
            ]
        },
    )

    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@-]{3,64}$")] = Field(
        description="The login name: 3-64 letters, digits and . _ @ -; it cannot be changed."
    )
    password: Password
    role: Role = Field(
        description="officer, first_secretary, town_staff or county_admin (API clients are "
        "registered with POST /clients)."
    )
    regions: RegionCodes
    display_name: DisplayName = ""

    @field_validator("role")
    @classmethod
    def _a_person(cls, role: Role) -> Role:
        if role is Role.api_client:
            raise ValueError(
                Text("API clients are registered with POST /api/v1/clients, not as users")
            )
        return role


class UserUpdate(BaseModel):
    """PATCH: only the fields sent change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"is_active": False}, {"display_name": "王庄村 张伟"}]},
    )

    display_name: DisplayName | None = None
    is_active: bool | None = Field(
        default=None,
        description="false disables the account: its tokens stop working at once and it cannot "
        "log in; true lets it log in again (its old logins stay ended).",
    )


class UserRegionsUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"regions": ["371522101201", "371522101202"]}]},
    )

    regions: RegionCodes


class PasswordReset(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "new-password-2026"}]}
    )

    password: Password


class UserPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PUBLIC_EXAMPLE]})

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    role_label: str = Field(description="The role's Chinese name, e.g. 信息员.")
    is_active: bool = Field(description="A disabled account cannot log in.")
    regions: list[str] = Field(description="Its villages, town or county (codes).")
    created_at: datetime
    updated_at: datetime


def user_public(user: User, regions: list[str]) -> UserPublic:
    role = Role(user.role)
    return UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=role,
        role_label=ROLE_LABELS[role],
        is_active=user.is_active,
        regions=sorted(regions),
        created_at=user.created_at,
        updated_at=user.updated_at,
    )
