"""Login sessions (token families) and their rotating refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.base import UTCDateTime, created_at_field, uuid_pk


class TokenFamily(SQLModel, table=True):
    """One login on one device: every refresh token rotated from it, and its access tokens.

    Access tokens carry the family id (`sid`), so revoking the family also refuses them.
    """

    __tablename__ = "token_family"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    device_id: str | None = Field(default=None, max_length=128, index=True)
    scope: str = Field(default="", max_length=500)
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=64)


class RefreshToken(SQLModel, table=True):
    """A refresh token, stored only as the SHA-256 of its 256 random bits."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = uuid_pk()
    family_id: uuid.UUID = Field(foreign_key="token_family.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
