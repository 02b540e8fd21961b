"""Bodies of held records: what a phone sent for a village taken from its author."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.types import NoNul
from app.sync.schemas import UserRef


class HeldReason(StrEnum):
    village_unassigned = "village_unassigned"  # 村已不再分配给作者


# The reason as the phone and the county read it (data, not a rendered Text: it is stored).
HELD_REASON_LABELS = {
    HeldReason.village_unassigned: "{village}已不再分配给您：记录已暂存，"
    "等待县扶贫信息中心接收或退回",
}


class HeldStatus(StrEnum):
    held = "held"  # 待处理
    accepted = "accepted"  # 已接收
    discarded = "discarded"  # 已退回


_HELD_EXAMPLE: dict[str, Any] = {
    "id": "7e2d4c1b-3a5f-4b6e-9c8d-1f2e3a4b5c6d",
    "record_type": "visit",
    "record_id": "5b0c3f7e-1d2a-4c6b-8e9f-0a1b2c3d4e5f",
    "revision": 1,
    "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "village_code": "371522101201",
    "author": {
        "id": "3c9e1f2a-4b5d-4e6f-8a7b-9c0d1e2f3a4b",
        "username": "officer.yandian",
        "display_name": "李信息员",
        "role": "officer",
    },
    "device_id": "android-7f3a9c",
    "batch_id": "0d6f5f0e-6c1a-4d8e-b0a3-2f6b0c9e4a11",
    "data": {
        "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
        "visited_at": "2026-11-20T09:30:00+08:00",
        "mode": "in_home",
        "findings": "危房改造已完工，住房安全有保障",
    },
    "reason_code": "village_unassigned",
    "reason": "王庄村（371522101201）已不再分配给您：记录已暂存，等待县扶贫信息中心接收或退回",
    "status": "held",
    "accepted_author_id": None,
    "decided_by": None,
    "decided_at": None,
    "note": None,
    "created_at": "2026-11-20T12:00:03Z",
}


class HeldPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_HELD_EXAMPLE]})

    id: uuid.UUID
    record_type: str
    record_id: uuid.UUID
    revision: int
    household_id: uuid.UUID
    village_code: str
    author: UserRef = Field(description="Who recorded it, on `device_id`.")
    device_id: str
    batch_id: uuid.UUID
    data: dict[str, Any] = Field(description="The record's fields as the phone sent them.")
    reason_code: HeldReason
    reason: str = Field(description="Why it was held, in Chinese, as the phone was told.")
    status: HeldStatus
    accepted_author_id: uuid.UUID | None = Field(
        description="accepted: the author the record was stored under."
    )
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    note: str | None = Field(description="discarded: the admin's reason.")
    created_at: datetime


class HeldAccept(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"author_id": "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a"}, {}]},
    )

    author_id: uuid.UUID | None = Field(
        default=None,
        description="An active officer or first secretary now assigned the record's village, "
        "stored as its author; omitted: you.",
    )


class HeldDiscard(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "该户已由新信息员重新走访"}]}
    )

    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoNul
    ] = Field(description="Why it is discarded (kept with the record).")


class HeldAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "held": {
                        **_HELD_EXAMPLE,
                        "status": "accepted",
                        "accepted_author_id": "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a",
                        "decided_by": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                        "decided_at": "2026-11-21T09:15:00Z",
                    },
                    "outcome": "created",
                    "version": 1,
                }
            ]
        }
    )

    held: HeldPublic
    outcome: Literal["created", "updated", "unchanged"] = Field(
        description="What storing it did: created, updated (a later revision of a stored "
        "record), unchanged (the server held it already)."
    )
    version: int = Field(description="The record's revision now stored.")
