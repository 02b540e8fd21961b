"""Device bodies: a phone, who last used it and when it was last seen."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.devices.models import Device
from app.users.models import User


class DeviceUser(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    role: str


class DevicePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": "android-7f3a9c",
                    "user": {
                        "id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
                        "username": "officer.yandian",
                        "display_name": "王秀英",
                        "role": "officer",
                    },
                    "app_version": "2.3.1",
                    "first_seen_at": "2026-03-02T01:15:00Z",
                    "last_seen_at": "2026-11-20T07:42:10Z",
                    "last_sync_at": "2026-11-20T07:42:12Z",
                    "revoked": False,
                    "revoked_at": None,
                }
            ]
        }
    )

    device_id: str = Field(description="The id the app generated and sends at login.")
    user: DeviceUser = Field(description="Who last logged in or synced on it.")
    app_version: str | None = Field(description="App version last reported at login.")
    first_seen_at: datetime
    last_seen_at: datetime = Field(description="Last login, refresh or sync (to the minute).")
    last_sync_at: datetime | None = Field(description="Last sync batch or pull (to the minute).")
    revoked: bool = Field(description="Revoked: its tokens are refused and it cannot log in.")
    revoked_at: datetime | None


def device_public(device: Device, user: User) -> DevicePublic:
    return DevicePublic(
        device_id=device.id,
        user=DeviceUser(
            id=user.id, username=user.username, display_name=user.display_name, role=user.role
        ),
        app_version=device.app_version,
        first_seen_at=device.first_seen_at,
        last_seen_at=device.last_seen_at,
        last_sync_at=device.last_sync_at,
        revoked=device.revoked_at is not None,
        revoked_at=device.revoked_at,
    )
