"""Signatures of deliveries: HMAC-SHA256 over the timestamp and the body.

    Fieldsync-Signature: t=1795412345,v1=5f2c…(64 hex digits)

`v1` = hex(HMAC-SHA256(key = the webhook's secret, message = f"{t}.".encode() + raw body)).
A receiver recomputes it over the raw bytes it received (before any JSON parsing), compares in
constant time and refuses a `t` too far from its own clock (replays). `verify` does all three:
receivers written in Python can copy it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "Fieldsync-Signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A webhook secret: 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 of `{timestamp}.{body}` under `secret`."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The value of Fieldsync-Signature for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether `header` (Fieldsync-Signature) signs `body` with `secret`, made within
    `tolerance_seconds` of `now`. Several `v1` values (none yet) would each be tried."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
