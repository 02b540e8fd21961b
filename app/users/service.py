"""Creating users and assigning them their villages, town or county; a county's accounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, exists, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select, update

from app.auth.models import TokenFamily
from app.auth.principal import Principal, region_filter
from app.core.base import utcnow
from app.core.errors import FieldError, InvalidInput
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.core.security import hash_password, make_password_hash, verify_password
from app.regions import codes
from app.regions.models import Region
from app.users.errors import CannotDisableYourself, UsernameTaken, UserNotFound
from app.users.models import Role, User, UserRegion, UserRegionEnded
from app.users.schemas import UserCreate, UserUpdate

# The level of region each role is assigned.
ROLE_REGION_LEVEL = {
    Role.officer: codes.Level.village,
    Role.first_secretary: codes.Level.village,
    Role.town_staff: codes.Level.town,
    Role.county_admin: codes.Level.county,
}
# Roles assigned one region only: town staff their town, a county admin the county.
_ONE_REGION = (Role.town_staff, Role.county_admin)


_ASSIGNED = {
    codes.Level.village: "villages",
    codes.Level.town: "a town",
    codes.Level.county: "a county",
}


class UserRegionError(ValueError):
    """A region given for a user does not exist or is of the wrong level for the role."""


@dataclass(frozen=True)
class RegionProblem:
    """What is wrong with the `index`-th region given for a user."""

    index: int
    message: Text
    type: str


async def region_problems(
    session: AsyncSession, *, role: Role, regions: Sequence[str], actor: Principal | None = None
) -> list[RegionProblem]:
    """The rule of a user's regions: each exists (and lies in `actor`'s regions, when given) and
    is of the role's level; town staff and county admins have one."""
    want = ROLE_REGION_LEVEL[role]
    found = {
        r.code: r
        for r in (await session.scalars(select(Region).where(col(Region.code).in_(regions)))).all()
    }
    problems: list[RegionProblem] = []
    for index, code in enumerate(regions):
        region = found.get(code)
        if actor is not None and (region is None or not actor.covers(code)):
            # Another county's region answers as a missing one: existence is not leaked.
            problems.append(
                RegionProblem(
                    index,
                    Text("region {code} does not exist or is not in your county", code=code),
                    "not_yours",
                )
            )
        elif region is None:
            problems.append(
                RegionProblem(
                    index,
                    Text("region {code} does not exist (import the regions first)", code=code),
                    "not_found",
                )
            )
        elif region.level != want:
            problems.append(
                RegionProblem(
                    index,
                    Text(
                        "a {role} is assigned {assigned}; {code} is a {level}",
                        role=role.value,
                        assigned=_ASSIGNED[want],
                        code=code,
                        level=codes.Level(region.level).name,
                    ),
                    "wrong_level",
                )
            )
    if role in _ONE_REGION and len(set(regions)) > 1:
        problems.append(
            RegionProblem(
                1,
                Text(
                    "a {role} is assigned {assigned}, one only",
                    role=role.value,
                    assigned=_ASSIGNED[want],
                ),
                "too_many",
            )
        )
    return problems


async def end_logins(session: AsyncSession, user_id: uuid.UUID, *, reason: str) -> None:
    """Revoke every login (token family) of the user: its refresh and access tokens stop."""
    await session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.user_id) == user_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def _assign(session: AsyncSession, user_id: uuid.UUID, regions: Sequence[str]) -> None:
    """Replace the user's regions; those taken away are remembered as ended (what the user's
    phone still sends for them is held for the county, see app/sync/held.py)."""
    before = set(
        (
            await session.scalars(
                select(UserRegion.region_code).where(col(UserRegion.user_id) == user_id)
            )
        ).all()
    )
    ended = sorted(before - set(regions))
    if ended:
        await session.execute(
            delete(UserRegionEnded).where(
                col(UserRegionEnded.user_id) == user_id,
                col(UserRegionEnded.region_code).in_(ended),
            )
        )
        now = utcnow()
        session.add_all(
            UserRegionEnded(user_id=user_id, region_code=code, ended_at=now) for code in ended
        )
    await session.execute(delete(UserRegion).where(col(UserRegion.user_id) == user_id))
    session.add_all(UserRegion(user_id=user_id, region_code=code) for code in sorted(set(regions)))
    await session.flush()


async def ended_regions(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    """The regions the user was assigned and no longer is."""
    return list(
        (
            await session.scalars(
                select(UserRegionEnded.region_code).where(col(UserRegionEnded.user_id) == user_id)
            )
        ).all()
    )


async def upsert_user(session: AsyncSession, *, data: UserCreate) -> tuple[User, bool]:
    """Create the user, or reset an existing one's password, role and regions."""
    problems = await region_problems(session, role=data.role, regions=data.regions)
    if problems:
        raise UserRegionError(problems[0].message)
    user = await session.scalar(select(User).where(User.username == data.username))
    created = user is None
    if user is None:
        user = User(username=data.username, password_hash="", role=data.role.value)
        session.add(user)
        changed = False
    else:
        old_regions = set(
            (
                await session.scalars(
                    select(UserRegion.region_code).where(UserRegion.user_id == user.id)
                )
            ).all()
        )
        changed = (
            user.role != data.role.value
            or old_regions != set(data.regions)
            or not verify_password(user.password_hash, data.password)
        )
    user.password_hash = hash_password(data.password)
    user.role = data.role.value
    user.display_name = data.display_name or user.display_name
    user.updated_at = utcnow()
    await session.flush()
    await _assign(session, user.id, data.regions)
    if changed:
        # A new password, role or region assignment ends every login made under the old ones.
        await end_logins(session, user.id, reason="account_changed")
    await session.flush()
    return user, created


# --- the county admin's API ----------------------------------------------------------------


@dataclass(frozen=True)
class UserRecord:
    """A user with the codes of its regions, as the API shows it."""

    user: User
    regions: list[str]


@dataclass(frozen=True)
class UserFilters:
    role: Role | None = None
    region: str | None = None
    is_active: bool | None = None
    q: str | None = None


def _visible(actor: Principal) -> ColumnElement[bool]:
    """The people whose every region lies in the admin's county (API clients are managed as
    clients): an account shared with another county is neither's to change."""
    inside = actor.within(col(UserRegion.region_code))
    own = col(UserRegion.user_id) == col(User.id)
    return and_(
        col(User.role) != Role.api_client.value,
        exists().where(own, inside),
        ~exists().where(own, ~inside),
    )


async def _with_regions(session: AsyncSession, users: Sequence[User]) -> list[UserRecord]:
    regions: dict[uuid.UUID, list[str]] = {u.id: [] for u in users}
    if users:
        rows = await session.execute(
            select(col(UserRegion.user_id), col(UserRegion.region_code))
            .where(col(UserRegion.user_id).in_(list(regions)))
            .order_by(col(UserRegion.region_code))
        )
        for user_id, code in rows:
            regions[user_id].append(code)
    return [UserRecord(u, regions[u.id]) for u in users]


def _checked(problems: list[RegionProblem]) -> None:
    if problems:
        raise InvalidInput(
            problems[0].message
            if len(problems) == 1
            else Text("{count} of the regions are refused", count=len(problems)),
            errors=[
                FieldError.of(f"body.regions.{p.index}", p.message, type=p.type) for p in problems
            ],
        )


async def list_users(
    session: AsyncSession, *, actor: Principal, filters: UserFilters, page: PageParams
) -> tuple[list[UserRecord], str | None]:
    """The accounts of the admin's county, oldest first."""
    stmt = select(User).where(_visible(actor))
    if filters.role is not None:
        stmt = stmt.where(col(User.role) == filters.role.value)
    if filters.region is not None:
        stmt = stmt.where(
            exists().where(
                col(UserRegion.user_id) == col(User.id),
                region_filter(filters.region, col(UserRegion.region_code)),
            )
        )
    if filters.is_active is not None:
        stmt = stmt.where(col(User.is_active).is_(filters.is_active))
    if filters.q:
        term = filters.q.strip()
        stmt = stmt.where(
            or_(
                col(User.username).contains(term, autoescape=True),
                col(User.display_name).contains(term, autoescape=True),
            )
        )
    users, cursor = await paginate(
        session, stmt, keys=[col(User.created_at), col(User.id)], page=page
    )
    return await _with_regions(session, users), cursor


async def _get(
    session: AsyncSession,
    *,
    actor: Principal | None,
    user_id: uuid.UUID,
    for_update: bool = False,
) -> User:
    """The account, if `actor` may administer it (`None`: the operator's CLI, any account)."""
    stmt = select(User).where(col(User.id) == user_id)
    if actor is not None:
        stmt = stmt.where(_visible(actor))
    if for_update:
        stmt = stmt.with_for_update(of=User)
    user = await session.scalar(stmt.execution_options(populate_existing=True))
    if user is None:
        raise UserNotFound(
            Text("user {user_id} does not exist or is not visible to you", user_id=user_id)
        )
    return user


async def get_user(session: AsyncSession, *, actor: Principal, user_id: uuid.UUID) -> UserRecord:
    """An account of the admin's county, else UserNotFound (existence not leaked)."""
    [record] = await _with_regions(session, [await _get(session, actor=actor, user_id=user_id)])
    return record


async def create_user(session: AsyncSession, *, actor: Principal, data: UserCreate) -> UserRecord:
    """A new account with its regions in the admin's county and its initial password."""
    regions = list(dict.fromkeys(data.regions))
    _checked(await region_problems(session, role=data.role, regions=regions, actor=actor))
    taken = FieldError.of("body.username", Text("already taken"), type="duplicate")
    taken_detail = Text("username {username} is already taken", username=data.username)
    if await session.scalar(select(User.id).where(col(User.username) == data.username)):
        raise UsernameTaken(taken_detail, errors=[taken])
    user = User(
        username=data.username,
        password_hash=await make_password_hash(data.password),
        role=data.role.value,
        display_name=data.display_name,
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:  # the same username, created meanwhile
        raise UsernameTaken(taken_detail, errors=[taken]) from None
    await _assign(session, user.id, regions)
    return UserRecord(user, sorted(regions))


async def update_user(
    session: AsyncSession, *, actor: Principal, user_id: uuid.UUID, data: UserUpdate
) -> UserRecord:
    """Rename or disable (or enable) an account; disabling ends its logins."""
    user = await _get(session, actor=actor, user_id=user_id, for_update=True)
    if data.is_active is False and user.id == actor.id:
        raise CannotDisableYourself(Text("you cannot disable your own account: ask another admin"))
    if data.display_name is not None:
        user.display_name = data.display_name
    if data.is_active is not None:
        if not data.is_active:
            # Every time, not only the first: a login that raced an earlier disabling ends too.
            await end_logins(session, user.id, reason="account_disabled")
        user.is_active = data.is_active
    user.updated_at = utcnow()
    await session.flush()
    [record] = await _with_regions(session, [user])
    return record


async def put_user_regions(
    session: AsyncSession, *, actor: Principal | None, user_id: uuid.UUID, regions: list[str]
) -> UserRecord:
    """Replace an account's regions (of its role's level, in the admin's county; `actor` None:
    the operator's CLI, any existing region). Its password and logins stay as they are."""
    user = await _get(session, actor=actor, user_id=user_id, for_update=True)
    regions = list(dict.fromkeys(regions))
    _checked(await region_problems(session, role=Role(user.role), regions=regions, actor=actor))
    await _assign(session, user.id, regions)
    user.updated_at = utcnow()
    await session.flush()
    return UserRecord(user, sorted(regions))


async def reset_password(
    session: AsyncSession, *, actor: Principal, user_id: uuid.UUID, password: str
) -> UserRecord:
    """Set a new password; every login of the account ends."""
    # Hashed before the row is locked: Argon2's tenth of a second holds no lock.
    password_hash = await make_password_hash(password)
    user = await _get(session, actor=actor, user_id=user_id, for_update=True)
    user.password_hash = password_hash
    user.updated_at = utcnow()
    await end_logins(session, user.id, reason="password_reset")
    await session.flush()
    [record] = await _with_regions(session, [user])
    return record


async def find_user(session: AsyncSession, *, username: str) -> User | None:
    """An account by its username (the operator's CLI)."""
    return await session.scalar(select(User).where(col(User.username) == username))


async def get_regions(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    """The codes of the user's regions, sorted."""
    return list(
        (
            await session.scalars(
                select(UserRegion.region_code)
                .where(col(UserRegion.user_id) == user_id)
                .order_by(col(UserRegion.region_code))
            )
        ).all()
    )
