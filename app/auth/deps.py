"""Authentication dependencies: the bearer token → a Principal, or 401 with WWW-Authenticate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.models import TokenFamily
from app.auth.principal import ROLE_SCOPES, Caller, Principal, remember_caller
from app.core.config import get_settings
from app.core.db import SessionDep, TransactionsDep, request_info
from app.core.errors import Forbidden, InsufficientScope, NotAuthenticated
from app.core.i18n import Text
from app.core.security import InvalidToken, decode_access_token
from app.users.models import Role, User, UserRegion

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    scheme_name="OAuth2Password",
    description="Officers, first secretaries and county admins log in with username and password.",
)


def _unauthorized(detail: Text, *, error: str | None = "invalid_token") -> NotAuthenticated:
    challenge = 'Bearer realm="fieldsync"'
    if error:
        challenge += f', error="{error}", error_description="{detail}"'
    return NotAuthenticated(detail, headers={"WWW-Authenticate": challenge})


async def get_principal(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The caller behind a valid, unrevoked access token (noted on the session: its writes are
    the caller's, see `app.audit`)."""
    principal = await authenticate(session, token)
    remember_caller(session.info, Caller(principal, client_address(request)))
    return principal


def client_address(request: Request) -> str | None:
    """The caller's address (behind trusted proxies, the one they forwarded)."""
    return request.client.host if request.client else None


async def get_principal_briefly(
    request: Request,
    transactions: TransactionsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller, looked up in a transaction closed at once: for routes that then wait on the
    network (an upload over 2G) and must hold neither a transaction nor the write lock. The
    transactions the route opens next know whom they write for."""
    async with transactions(writing=False) as session:
        principal = await authenticate(session, token)
        caller = Caller(principal, client_address(request))
        remember_caller(session.info, caller)
    remember_caller(request_info(request), caller)
    return principal


async def authenticate(session: AsyncSession, token: str | None) -> Principal:
    if not token:
        raise _unauthorized(Text("an access token is required"), error=None)
    try:
        claims = decode_access_token(get_settings(), token)
    except InvalidToken:
        raise _unauthorized(Text("the access token is invalid or expired")) from None
    # One round trip: the user, the login (for revocation) and the user's regions.
    rows = (
        await session.execute(
            select(User, TokenFamily, UserRegion.region_code)
            .join(TokenFamily, col(TokenFamily.user_id) == User.id)
            .outerjoin(UserRegion, col(UserRegion.user_id) == User.id)
            .where(User.id == claims.user_id, TokenFamily.id == claims.family_id)
            .order_by(col(UserRegion.region_code))
        )
    ).all()
    if not rows:
        raise _unauthorized(Text("the access token is invalid or expired"))
    user, family, _ = rows[0]
    if not user.is_active or family.revoked_at is not None:
        raise _unauthorized(Text("the access token has been revoked"))
    region_codes = [code for _, _, code in rows if code is not None]
    return Principal(
        user=user,
        role=Role(user.role),
        region_codes=tuple(region_codes),
        family_id=family.id,
        device_id=family.device_id,
        # What the role grants today bounds what an older token says.
        scopes=frozenset(claims.scope.split()) & frozenset(ROLE_SCOPES[Role(user.role)]),
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
BrieflyAuthenticated = Annotated[Principal, Depends(get_principal_briefly)]


@dataclass(frozen=True)
class Requirement:
    """What a `require(...)` dependency checks: one of `roles` (any, if empty) and every scope."""

    roles: tuple[Role, ...]
    scopes: tuple[str, ...]


# Each dependency `require` made, with what it checks: the OpenAPI document declares it.
REQUIREMENTS: dict[Callable[..., Awaitable[Principal]], Requirement] = {}


def require(
    *, roles: tuple[Role, ...] = (), scopes: tuple[str, ...] = (), briefly: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the caller must hold one of `roles` (if given) and every scope.

    `briefly`: authenticate in a transaction of its own (see `get_principal_briefly`).
    """

    def verify(principal: Principal) -> Principal:
        if roles and principal.role not in roles:
            raise Forbidden(
                Text("this needs the role {roles}", roles=" or ".join(r.value for r in roles))
            )
        missing = [scope for scope in scopes if scope not in principal.scopes]
        if missing:
            challenge = f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
            raise InsufficientScope(
                Text("your token lacks the scope {missing}", missing=" ".join(missing)),
                headers={"WWW-Authenticate": challenge},
            )
        return principal

    async def check(principal: CurrentPrincipal) -> Principal:
        return verify(principal)

    async def check_briefly(principal: BrieflyAuthenticated) -> Principal:
        return verify(principal)

    dependency = check_briefly if briefly else check
    REQUIREMENTS[dependency] = Requirement(roles, scopes)
    return dependency


# Read the households (and their members) of the caller's villages; regions and thresholds.
Reader = Annotated[Principal, Depends(require(scopes=("households:read",)))]
# Read their visits, income snapshots and support measures.
RecordsReader = Annotated[Principal, Depends(require(scopes=("records:read",)))]
# Read progress documents and region figures.
ProgressReader = Annotated[Principal, Depends(require(scopes=("progress:read",)))]
# Lists of households with their progress (exports, data quality): both kinds of data.
HouseholdProgressReader = Annotated[
    Principal, Depends(require(scopes=("households:read", "progress:read")))
]
# Read photos.
PhotosReader = Annotated[Principal, Depends(require(scopes=("photos:read",)))]
# Read the state of sync: devices, stored batch answers.
SyncReader = Annotated[Principal, Depends(require(scopes=("sync:read",)))]
# Take the steps of a monitoring case's procedure (which step: by role and region).
MonitoringWriter = Annotated[Principal, Depends(require(scopes=("monitoring:write",)))]
# Change them: record visits, snapshots and measures, edit households and members.
Writer = Annotated[Principal, Depends(require(scopes=("households:write",)))]
# The same, for routes that stream a request body and open their own short transactions.
StreamingWriter = Annotated[Principal, Depends(require(scopes=("households:write",), briefly=True))]
# County information center: register households.
HouseholdAdmin = Annotated[
    Principal, Depends(require(roles=(Role.county_admin,), scopes=("households:write",)))
]
# County information center: divisions and thresholds.
RegionAdmin = Annotated[
    Principal, Depends(require(roles=(Role.county_admin,), scopes=("regions:write",)))
]
# County information center: the county's accounts, their phones and the apps that read it.
AccountAdmin = Annotated[
    Principal, Depends(require(roles=(Role.county_admin,), scopes=("users:write",)))
]
