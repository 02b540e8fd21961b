"""API client bodies: what a county admin sends, and what it sees (the secret only once)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.clients.models import ApiClient
from app.core.types import NoNul
from app.regions.codes import CODE_PATTERN


class ClientScope(StrEnum):
    """What a client may be granted: the read scopes and `pii:read`, never a write scope."""

    households_read = "households:read"
    records_read = "records:read"
    progress_read = "progress:read"
    photos_read = "photos:read"
    sync_read = "sync:read"
    pii_read = "pii:read"


_ORDER = list(ClientScope)
_CLIENT_ID = "4b0f9e52-7c1d-4e8a-9f3b-2d6c5a1e8f70"
_PUBLIC_EXAMPLE: dict[str, Any] = {
    "client_id": _CLIENT_ID,
    "name": "聊城市防返贫监测平台",
    "region_code": "371522000000",
    "scopes": ["households:read", "progress:read"],
    "created_by": "0d8f9a52-3c1e-4a57-9a4c-6b1d2f0e7a11",
    "created_at": "2026-11-23T02:00:00Z",
    "rotated_at": None,
    "disabled_at": None,
    "disabled": False,
}


class ClientCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "聊城市防返贫监测平台",
                    "region_code": "371522000000",
                    "scopes": ["households:read", "progress:read"],
                }
            ]
        },
    )

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
    ] = Field(description="Who the app is, for the county's list of clients.")
    region_code: Annotated[str, StringConstraints(pattern=CODE_PATTERN)] = Field(
        description="The region the client may read: yours, or a town or village under it."
    )
    scopes: list[ClientScope] = Field(
        min_length=1,
        max_length=len(_ORDER),
        description="What its tokens may do: read scopes only. Without `pii:read`, ID numbers "
        "and phones are masked and exact positions coarsened.",
    )

    @field_validator("scopes")
    @classmethod
    def _canonical(cls, scopes: list[ClientScope]) -> list[ClientScope]:
        return sorted(set(scopes), key=_ORDER.index)


class ClientPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PUBLIC_EXAMPLE]})

    client_id: uuid.UUID = Field(description="The `client_id` of the token endpoint.")
    name: str
    region_code: str = Field(description="The region it reads.")
    scopes: list[ClientScope]
    created_by: uuid.UUID = Field(description="The county admin who registered it.")
    created_at: datetime
    rotated_at: datetime | None = Field(description="When its secret was last replaced.")
    disabled_at: datetime | None
    disabled: bool = Field(description="A disabled client gets no tokens; its tokens stopped.")


class ClientWithSecret(ClientPublic):
    """The client and its new secret: shown in this answer only."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_PUBLIC_EXAMPLE, "client_secret": "Zk3q9xW1bT5vN8cR2mH7pL4sD6fG0jYa…"}]
        }
    )

    client_secret: str = Field(
        description="Shown only now: the server keeps a hash of it. Send it to the token "
        "endpoint with the client_id (HTTP Basic, or client_secret in the form)."
    )


def client_public(client: ApiClient) -> ClientPublic:
    return ClientPublic(
        client_id=client.id,
        name=client.name,
        region_code=client.region_code,
        scopes=[ClientScope(s) for s in client.scopes],
        created_by=client.created_by,
        created_at=client.created_at,
        rotated_at=client.rotated_at,
        disabled_at=client.disabled_at,
        disabled=client.disabled_at is not None,
    )


def client_with_secret(client: ApiClient, secret: str) -> ClientWithSecret:
    return ClientWithSecret(**client_public(client).model_dump(), client_secret=secret)
