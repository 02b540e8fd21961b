"""What the token endpoint publishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class SignInAttempted:
    """A request to the token endpoint, granted or refused (in the request's transaction)."""

    grant_type: str | None
    username: str | None  # as typed, password grant only
    user_id: uuid.UUID | None  # the account signed in (None when refused)
    device_id: str | None  # as sent, if well-formed
    client_address: str | None
    error: str | None  # the OAuth error code; None: granted
