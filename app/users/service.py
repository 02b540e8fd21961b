"""Creating users and assigning them their villages, town or county."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select, update

from app.auth.models import TokenFamily
from app.core.base import utcnow
from app.core.security import hash_password, verify_password
from app.regions import codes
from app.regions.models import Region
from app.users.models import Role, User, UserRegion
from app.users.schemas import UserCreate

# The level of region each role is assigned.
ROLE_REGION_LEVEL = {
    Role.officer: codes.Level.village,
    Role.first_secretary: codes.Level.village,
    Role.town_staff: codes.Level.town,
    Role.county_admin: codes.Level.county,
}


_ASSIGNED = {
    codes.Level.village: "villages",
    codes.Level.town: "a town",
    codes.Level.county: "a county",
}


class UserRegionError(ValueError):
    """A region given for a user does not exist or is of the wrong level for the role."""


async def upsert_user(session: AsyncSession, *, data: UserCreate) -> tuple[User, bool]:
    """Create the user, or reset an existing one's password, role and regions."""
    want = ROLE_REGION_LEVEL[data.role]
    found = {
        r.code: r
        for r in (
            await session.scalars(select(Region).where(col(Region.code).in_(data.regions)))
        ).all()
    }
    for code in data.regions:
        region = found.get(code)
        if region is None:
            raise UserRegionError(f"region {code} does not exist (import the regions first)")
        if region.level != want:
            raise UserRegionError(
                f"a {data.role.value} is assigned {_ASSIGNED[want]}; "
                f"{code} is a {codes.Level(region.level).name}"
            )
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
    await session.execute(delete(UserRegion).where(col(UserRegion.user_id) == user.id))
    session.add_all(
        UserRegion(user_id=user.id, region_code=code) for code in sorted(set(data.regions))
    )
    if changed:
        # A new password, role or region assignment ends every login made under the old ones.
        await session.execute(
            update(TokenFamily)
            .where(col(TokenFamily.user_id) == user.id, col(TokenFamily.revoked_at).is_(None))
            .values(revoked_at=utcnow(), revoked_reason="account_changed")
        )
    await session.flush()
    return user, created
