"""Signatures of deliveries, as the Standard Webhooks specification has them
(https://www.standardwebhooks.com), so that a receiver verifies with that project's library in
any language:

    webhook-id: 48213                       the event's id: the same on every retry
    webhook-timestamp: 1795412345           unix seconds of this attempt
    webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=

`v1` is base64(HMAC-SHA256(key, f"{id}.{timestamp}." + raw body)), where the key is the
base64-decoded part of the secret after `whsec_`. Secrets are `whsec_` + standard base64 of 32
random bytes. Webhooks created before the switch hold URL-safe base64 (`-` and `_`, no
padding) of their 32 bytes: the same key is used, and `standard_secret` spells it as the
libraries expect (docs/integration.md tells receivers how).
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A webhook secret: 256 random bits, `whsec_` + standard base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of `secret`: its base64 part decoded, standard or (older secrets) URL-safe."""
    encoded = secret.removeprefix(SECRET_PREFIX).rstrip("=").translate(_TO_URLSAFE)
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def standard_secret(secret: str) -> str:
    """`secret` as the Standard Webhooks libraries read it (a new secret is returned as is)."""
    return SECRET_PREFIX + base64.b64encode(secret_key(secret)).decode("ascii")


def signature_headers(
    secret: str, *, message_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers that sign `body` as message `message_id`, now (or at `timestamp`)."""
    moment = datetime.now(UTC) if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(int(moment.timestamp())),
        SIGNATURE_HEADER: Webhook(secret_key(secret)).sign(message_id, moment, body),
    }


_TO_URLSAFE = str.maketrans("+/", "-_")
