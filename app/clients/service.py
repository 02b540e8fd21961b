"""Registering API clients, replacing their secrets, disabling them, and their tokens."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.errors import OAuthError
from app.auth.models import TokenFamily
from app.auth.principal import Principal
from app.auth.service import IssuedTokens
from app.clients.errors import ClientDisabled, ClientNotFound
from app.clients.models import ApiClient
from app.clients.schemas import ClientCreate
from app.core.base import utcnow
from app.core.config import Settings
from app.core.errors import InsufficientScope, InvalidInput
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.core.security import check_password, create_access_token, make_password_hash
from app.regions.models import Region
from app.users.models import Role, User, UserRegion

# Not an Argon2 hash: no password ever verifies against it, so a service account cannot log in
# with a password (and the password grant refuses the role as well).
NO_PASSWORD = "!api-client"


def _new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits


async def _new_family(
    session: AsyncSession, *, user_id: uuid.UUID, scopes: list[str]
) -> TokenFamily:
    """The token family of a new secret: the tokens issued under it are revoked together."""
    family = TokenFamily(user_id=user_id, scope=" ".join(scopes))
    session.add(family)
    await session.flush()
    return family


async def _revoke_tokens(session: AsyncSession, client: ApiClient, *, reason: str) -> None:
    """End every token the client holds now."""
    await session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.user_id) == client.user_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def create_client(
    session: AsyncSession, *, actor: Principal, data: ClientCreate
) -> tuple[ApiClient, str]:
    """Register a client for a region at or below the admin's; returns it and its secret."""
    region = await session.get(Region, data.region_code)
    if region is None or not actor.covers(data.region_code):
        raise InvalidInput.field(
            "body.region_code",
            Text(
                "region {region_code} does not exist or is not at or below one of yours",
                region_code=data.region_code,
            ),
            type="not_yours",
        )
    scopes = [scope.value for scope in data.scopes]
    missing = [scope for scope in scopes if scope not in actor.scopes]
    if missing:
        raise InsufficientScope(
            Text("you cannot grant a scope your token lacks: {missing}", missing=" ".join(missing))
        )
    client_id = uuid.uuid4()
    # The username cannot collide with a person's: usernames have no colon.
    user = User(
        username=f"client:{client_id}",
        password_hash=NO_PASSWORD,
        role=Role.api_client.value,
        display_name=data.name,
    )
    session.add(user)
    await session.flush()
    session.add(UserRegion(user_id=user.id, region_code=region.code))
    family = await _new_family(session, user_id=user.id, scopes=scopes)
    secret = _new_secret()
    client = ApiClient(
        id=client_id,
        name=data.name,
        user_id=user.id,
        region_code=region.code,
        scopes=scopes,
        secret_hash=await make_password_hash(secret),
        token_family_id=family.id,
        created_by=actor.id,
    )
    session.add(client)
    await session.flush()
    return client, secret


def _visible(actor: Principal) -> ColumnElement[bool]:
    return actor.within(col(ApiClient.region_code))


async def get_client(
    session: AsyncSession, *, actor: Principal, client_id: uuid.UUID, for_update: bool = False
) -> ApiClient:
    """A client of the admin's region, else ClientNotFound (existence not leaked)."""
    stmt = select(ApiClient).where(col(ApiClient.id) == client_id, _visible(actor))
    if for_update:
        stmt = stmt.with_for_update()
    client = await session.scalar(stmt)
    if client is None:
        raise ClientNotFound(
            Text(
                "API client {client_id} does not exist or is not visible to you",
                client_id=client_id,
            )
        )
    return client


async def list_clients(
    session: AsyncSession, *, actor: Principal, page: PageParams
) -> tuple[list[ApiClient], str | None]:
    """The clients of the admin's region, oldest first."""
    return await paginate(
        session,
        select(ApiClient).where(_visible(actor)),
        keys=[col(ApiClient.created_at), col(ApiClient.id)],
        page=page,
    )


async def rotate_secret(
    session: AsyncSession, *, actor: Principal, client_id: uuid.UUID
) -> tuple[ApiClient, str]:
    """A new secret: the old one stops working, and so does every token issued under it."""
    client = await get_client(session, actor=actor, client_id=client_id, for_update=True)
    if client.disabled_at is not None:
        raise ClientDisabled(
            Text("API client {client_id} is disabled: register a new one", client_id=client_id)
        )
    secret = _new_secret()
    client.secret_hash = await make_password_hash(secret)
    client.rotated_at = utcnow()
    await _revoke_tokens(session, client, reason="client_secret_rotated")
    family = await _new_family(session, user_id=client.user_id, scopes=client.scopes)
    client.token_family_id = family.id
    await session.flush()
    return client, secret


async def disable_client(
    session: AsyncSession, *, actor: Principal, client_id: uuid.UUID
) -> ApiClient:
    """Disable a client for good: no more tokens, and those it holds stop at once."""
    client = await get_client(session, actor=actor, client_id=client_id, for_update=True)
    now = utcnow()
    if client.disabled_at is None:
        client.disabled_at = now
    await session.execute(
        update(User).where(col(User.id) == client.user_id).values(is_active=False, updated_at=now)
    )
    # Every time, not only the first: nothing issued in between survives.
    await _revoke_tokens(session, client, reason="client_disabled")
    await session.flush()
    return client


def invalid_client(description: str) -> OAuthError:
    """RFC 6749 §5.2: 401 with `WWW-Authenticate: Basic`, however the client authenticated."""
    return OAuthError("invalid_client", description, status=401)


async def issue_token(
    session: AsyncSession,
    settings: Settings,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
) -> IssuedTokens:
    """client_credentials grant: a short-lived access token for the client's scopes (or fewer).

    No refresh token: a client asks again with its secret.
    """
    try:
        key: uuid.UUID | None = uuid.UUID(client_id)
    except ValueError:
        key = None
    client = await session.get(ApiClient, key) if key is not None else None
    verified = await check_password(client.secret_hash if client else None, client_secret)
    if client is None or not verified:
        raise invalid_client("unknown client or wrong secret")
    if client.disabled_at is not None:
        raise invalid_client("this client is disabled")
    granted = list(client.scopes)
    if scope:
        unknown = [s for s in scope.split() if s not in granted]
        if unknown:
            raise OAuthError(
                "invalid_scope", f"scope not granted to this client: {' '.join(unknown)}"
            )
        granted = [s for s in granted if s in scope.split()]
    family = await session.get(TokenFamily, client.token_family_id)
    if family is None or family.revoked_at is not None:
        # Its tokens were revoked (RFC 7009): the secret still holds, so start a new family.
        family = await _new_family(session, user_id=client.user_id, scopes=client.scopes)
        client.token_family_id = family.id
        await session.flush()
    granted_scope = " ".join(granted)
    access, expires_in = create_access_token(
        settings,
        user_id=client.user_id,
        family_id=family.id,
        role=Role.api_client.value,
        scope=granted_scope,
        minutes=settings.client_token_minutes,
    )
    return IssuedTokens(access, expires_in, None, granted_scope, client.user_id)
