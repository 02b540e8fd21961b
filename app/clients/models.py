"""Third-party apps (API clients) a county admin registers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, created_at_field, json_list, region_code_type, uuid_pk


class ApiClient(SQLModel, table=True):
    """An app that reads one region with the scopes it was granted (client_credentials).

    It acts through a service account of its own (`user_id`: role api_client, no password,
    the region in user_region), so every per-object rule applies to it as to a user. Its
    tokens belong to one token family per secret: rotating the secret or disabling the client
    revokes that family, and with it every token issued under the old secret.
    """

    __tablename__ = "api_client"

    id: uuid.UUID = uuid_pk()  # the client_id
    name: str = Field(max_length=100)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", unique=True)
    region_code: str = Field(
        foreign_key="region.code", max_length=21, index=True, sa_type=region_code_type()
    )
    scopes: list[str] = json_list()
    # Argon2id of the secret, as passwords are stored; the secret itself is shown once.
    secret_hash: str = Field(max_length=255)
    # The token family of the current secret.
    token_family_id: uuid.UUID = Field(foreign_key="token_family.id")
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = created_at_field()
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
