"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class TokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…",
                    "token_type": "bearer",
                    "expires_in": 1800,
                    "refresh_token": "k3J0p8gq1bXl6c2m…",
                    "scope": "households:read households:write pii:read",
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds.")
    refresh_token: str | None = Field(
        default=None,
        description="Use once with grant_type=refresh_token; every use returns a new one. "
        "Absent for client_credentials: a client asks again with its secret.",
    )
    scope: str


class RegionRef(BaseModel):
    code: str
    name: str
    level: int


class MePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
                    "username": "officer.yandian",
                    "display_name": "王秀英",
                    "role": "officer",
                    "role_label": "信息员",
                    "regions": [{"code": "371522101201", "name": "王庄村", "level": 5}],
                    "scope": "households:read households:write pii:read",
                    "device_id": "android-7f3a9c",
                }
            ]
        }
    )

    id: uuid.UUID
    username: str
    display_name: str
    role: str
    role_label: str
    regions: list[RegionRef]
    scope: str
    device_id: str | None
