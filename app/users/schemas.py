"""User bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.core.i18n import Text
from app.users.models import Role


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@-]{3,64}$")]
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)]
    role: Role
    regions: list[str] = Field(min_length=1, max_length=200)
    display_name: Annotated[str, StringConstraints(max_length=100)] = ""

    @field_validator("role")
    @classmethod
    def _a_person(cls, role: Role) -> Role:
        if role is Role.api_client:
            raise ValueError(
                Text("API clients are registered with POST /api/v1/clients, not as users")
            )
        return role
