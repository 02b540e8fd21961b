"""Password hashing (Argon2id) and access tokens (JWT, HS256, strictly verified)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from jose import JWTError, jwt

from app.core.config import Settings

ALGORITHM = "HS256"

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def check_password(password_hash: str | None, password: str) -> bool:
    """`verify_password` in a worker thread: Argon2 takes a tenth of a second of CPU, which no
    other request of the event loop should wait behind (2,000 phones log in at the end of a
    day)."""
    return await anyio.to_thread.run_sync(verify_password, password_hash, password)


async def make_password_hash(password: str) -> str:
    """`hash_password` in a worker thread, for the same reason as `check_password`."""
    return await anyio.to_thread.run_sync(hash_password, password)


def new_refresh_token() -> tuple[str, str]:
    """A refresh token (256 random bits) and the SHA-256 under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    family_id: uuid.UUID
    scope: str
    expires_at: datetime


def create_access_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    role: str,
    scope: str,
    minutes: int | None = None,
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds (default: `access_token_minutes`)."""
    now = datetime.now(UTC)
    lifetime = timedelta(minutes=minutes or settings.access_token_minutes)
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "sid": str(family_id),
        "role": role,
        "scope": scope,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.signing_key, algorithm=ALGORITHM)
    return token, int(lifetime.total_seconds())


class InvalidToken(Exception):
    pass


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """Verify signature, algorithm, expiry, issuer and audience; raise InvalidToken otherwise."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        claims = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_aud": True,
                "require_iss": True,
                "require_sub": True,
                "leeway": 30,
            },
        )
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            family_id=uuid.UUID(claims["sid"]),
            scope=str(claims.get("scope", "")),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except InvalidToken:
        raise
    except (
        JWTError,
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
        OverflowError,
        OSError,
    ) as exc:
        raise InvalidToken(str(exc) or type(exc).__name__) from None
