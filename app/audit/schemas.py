"""Audit log bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditAction(StrEnum):
    sign_in = "sign_in"  # 登录
    sign_in_failed = "sign_in_failed"  # 登录失败
    create = "create"  # 新增
    update = "update"  # 修改
    delete = "delete"  # 删除


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "seq": 1042,
                    "id": "5b0c2f8e-9d0a-4c1b-8e77-2a4f6c1d3e90",
                    "at": "2026-12-07T08:15:02.311000Z",
                    "actor_id": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
                    "actor_role": "officer",
                    "device_id": "android-7f3a9c",
                    "client_address": "10.8.0.23",
                    "action": "update",
                    "entity_type": "household",
                    "entity_id": "9a3e5f0c-1b2d-4e6f-8a9b-0c1d2e3f4a5b",
                    "household_id": "9a3e5f0c-1b2d-4e6f-8a9b-0c1d2e3f4a5b",
                    "region_code": "371522101201",
                    "changes": {"phone": "138****1234", "status": "1"},
                    "prev_hash": "3f1c…",
                    "hash": "a97d…",
                }
            ]
        },
    )

    seq: int = Field(description="Position in the chain: 1, 2, 3… without gaps.")
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None = Field(description="The user; null for the system.")
    actor_role: str | None
    device_id: str | None
    client_address: str | None
    action: str = Field(description="sign_in, sign_in_failed, create, update or delete")
    entity_type: str | None = Field(description="household, member, visit, user, …")
    entity_id: str | None
    household_id: uuid.UUID | None
    region_code: str | None
    changes: dict[str, Any] = Field(
        description="Fields written (all of a new object, the changed ones of an update) with "
        "their new values; ID numbers, phones and names masked, secrets shown as ***. A sign-in: "
        "its grant type and outcome."
    )
    prev_hash: str
    hash: str
