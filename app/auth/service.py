"""Logins, refresh-token rotation with reuse detection, and revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.errors import OAuthError, invalid_grant, invalid_request
from app.auth.events import SignInAttempted
from app.auth.models import RefreshToken, TokenFamily
from app.auth.principal import ROLE_SCOPES
from app.core import events
from app.core.base import utcnow
from app.core.config import Settings
from app.core.security import (
    InvalidToken,
    check_password,
    create_access_token,
    decode_access_token,
    hash_refresh_token,
    new_refresh_token,
)
from app.devices import service as devices_service
from app.users.models import Role, User

_APP_VERSION_MAX = 32
GRANT_TYPES = ("password", "refresh_token", "client_credentials")


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str | None  # None: client_credentials (RFC 6749 §4.4.3)
    scope: str
    user_id: uuid.UUID | None = None  # whom the tokens are for


def _granted_scope(role: Role, requested: str | None) -> str:
    allowed = ROLE_SCOPES[role]
    if not requested:
        return " ".join(allowed)
    wanted = requested.split()
    unknown = [s for s in wanted if s not in allowed]
    if unknown:
        raise OAuthError(
            "invalid_scope", f"scope not available to this account: {' '.join(unknown)}"
        )
    return " ".join(s for s in allowed if s in wanted)


def validate_device_id(device_id: str | None) -> str | None:
    if device_id is None or device_id == "":
        return None
    if not devices_service.DEVICE_ID_RE.fullmatch(device_id):
        raise invalid_request("device_id: 1-128 letters, digits and . _ : -")
    return device_id


def validate_app_version(app_version: str | None) -> str | None:
    if app_version is None or app_version == "":
        return None
    if len(app_version) > _APP_VERSION_MAX or not app_version.isprintable():
        raise invalid_request(f"app_version: at most {_APP_VERSION_MAX} printable characters")
    return app_version


async def _issue(
    session: AsyncSession,
    settings: Settings,
    *,
    user: User,
    family: TokenFamily,
    scope: str | None = None,
) -> IssuedTokens:
    """A new refresh token of `family` and an access token for `scope` (default: the login's)."""
    scope = scope or family.scope
    token, token_hash = new_refresh_token()
    session.add(
        RefreshToken(
            family_id=family.id,
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(days=settings.refresh_token_days),
        )
    )
    access, expires_in = create_access_token(
        settings, user_id=user.id, family_id=family.id, role=user.role, scope=scope
    )
    return IssuedTokens(access, expires_in, token, scope, user.id)


async def login_with_password(
    session: AsyncSession,
    settings: Settings,
    *,
    username: str,
    password: str,
    device_id: str | None,
    scope: str | None,
    app_version: str | None = None,
) -> IssuedTokens:
    """Password grant: a new token family bound to the device, which is registered."""
    device_id = validate_device_id(device_id)
    app_version = validate_app_version(app_version)
    user = await session.scalar(select(User).where(User.username == username))
    password_ok = await check_password(user.password_hash if user else None, password)
    if user is None or not password_ok or not user.is_active or user.role == Role.api_client:
        raise invalid_grant("wrong username or password, or the account is disabled")
    granted = _granted_scope(Role(user.role), scope)
    if device_id is not None:
        try:
            await devices_service.register_device(
                session, user=user, device_id=device_id, app_version=app_version, now=utcnow()
            )
        except devices_service.DeviceRevoked:
            raise invalid_grant("this device has been revoked") from None
    family = TokenFamily(user_id=user.id, device_id=device_id, scope=granted)
    session.add(family)
    await session.flush()
    return await _issue(session, settings, user=user, family=family)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, *, reason: str) -> None:
    await session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.id) == family_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
    )


async def rotate_refresh_token(
    session: AsyncSession,
    settings: Settings,
    *,
    refresh_token: str,
    device_id: str | None,
    scope: str | None,
    app_version: str | None = None,
) -> IssuedTokens:
    """Refresh grant: spend the token, issue its successor; a reused token kills its family.

    Raises OAuthError after recording a revocation: the caller must still commit the session.
    """
    device_id = validate_device_id(device_id)
    app_version = validate_app_version(app_version)
    row = (
        await session.execute(
            select(RefreshToken, TokenFamily, User)
            .join(TokenFamily, col(TokenFamily.id) == RefreshToken.family_id)
            .join(User, col(User.id) == TokenFamily.user_id)
            .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
        )
    ).first()
    if row is None:
        raise invalid_grant("unknown refresh token")
    token, family, user = row
    now = datetime.now(UTC)
    if family.revoked_at is not None:
        if family.revoked_reason == "device_revoked":
            raise invalid_grant("this device has been revoked")
        raise invalid_grant("this login has been revoked; sign in again")
    if token.used_at is not None:
        await revoke_family(session, family.id, reason="refresh_token_reuse")
        raise invalid_grant("refresh token already used; this login is revoked, sign in again")
    # The token is bound to its device already: a refresh that names no device (as standard
    # OAuth2 libraries send it) continues on that device; one that names another is a theft.
    if family.device_id is not None and device_id is not None and device_id != family.device_id:
        await revoke_family(session, family.id, reason="device_mismatch")
        raise invalid_grant("refresh token presented by another device; this login is revoked")
    if token.expires_at <= now:
        raise invalid_grant("refresh token expired; sign in again")
    if not user.is_active:
        raise invalid_grant("the account is disabled")
    granted = family.scope.split()
    if scope and not set(scope.split()) <= set(granted):
        raise OAuthError("invalid_scope", "a refresh cannot widen the scope of the login")
    # A narrower scope applies to this access token only (RFC 6749 §6); the login keeps its own.
    narrowed = " ".join(s for s in granted if s in scope.split()) if scope else None
    # Spend the token atomically: of two concurrent refreshes only one wins, the other is a reuse.
    spent = await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == token.id, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    # An UPDATE's result is a CursorResult, but AsyncSession.execute is typed to return Result.
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        await revoke_family(session, family.id, reason="refresh_token_reuse")
        raise invalid_grant("refresh token already used; this login is revoked, sign in again")
    if family.device_id is not None:
        # Revoking a device revokes its families; this catches a login that raced it.
        try:
            await devices_service.touch_device(
                session, family.device_id, user_id=user.id, app_version=app_version, now=now
            )
        except devices_service.DeviceRevoked:
            await revoke_family(session, family.id, reason="device_revoked")
            raise invalid_grant("this device has been revoked") from None
    return await _issue(session, settings, user=user, family=family, scope=narrowed)


async def note_attempt(
    session: AsyncSession,
    *,
    grant_type: str | None,
    username: str | None,
    device_id: str | None,
    client_address: str | None,
    issued: IssuedTokens | None,
    error: OAuthError | None,
) -> None:
    """Publish a sign-in attempt, granted (`issued`) or refused (`error`)."""
    well_formed = device_id is not None and devices_service.DEVICE_ID_RE.fullmatch(device_id)
    await events.publish(
        session,
        SignInAttempted(
            grant_type=grant_type if grant_type in GRANT_TYPES else None,
            username=username[:64]
            if username and grant_type == "password" and username.isprintable()
            else None,
            user_id=issued.user_id if issued else None,
            device_id=device_id if well_formed else None,
            client_address=client_address,
            error=error.error if error else None,
        ),
    )


async def revoke_token(session: AsyncSession, settings: Settings, *, token: str) -> None:
    """RFC 7009: revoke the login a refresh or access token belongs to; ignore unknown tokens."""
    family_id = await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == hash_refresh_token(token))
    )
    if family_id is None:
        try:
            family_id = decode_access_token(settings, token).family_id
        except InvalidToken:
            return
    await revoke_family(session, family_id, reason="revoked_by_client")
