"""Phones: registered at login, touched by refreshes and syncs, listed and revoked by the county."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.models import TokenFamily
from app.auth.principal import Principal
from app.core.errors import Forbidden, NotFound
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.devices.models import Device
from app.users.models import Role, User, UserRegion

# What an app may use as its device_id.
DEVICE_ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

# last_seen_at / last_sync_at are for people ("seen 3 days ago"): a phone that refreshes and
# syncs every few seconds need not write its row every time.
TOUCH_GRANULARITY = timedelta(seconds=60)


class DeviceNotFound(NotFound):
    code = "device_not_found"
    title = "Device not found"


class DeviceRevoked(Forbidden):
    code = "device_revoked"
    title = "Device revoked"


@dataclass(frozen=True)
class DeviceRecord:
    """A device with the user who last used it, as the API shows it."""

    device: Device
    user: User


async def _upsert(
    session: AsyncSession,
    device_id: str,
    *,
    user_id: uuid.UUID,
    app_version: str | None,
    synced: bool,
    now: datetime,
    lock: bool,
) -> Device:
    """Create the device or bring it up to date; DeviceRevoked if it has been revoked."""
    # populate_existing: decide on the row as stored (and, when locked, as of the lock).
    device = await session.get(
        Device, device_id, with_for_update=lock or None, populate_existing=True
    )
    if device is None:
        # Two first requests of one phone may race: the loser's insert does nothing.
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        await session.execute(
            dialect.insert(Device)
            .values(
                id=device_id,
                user_id=user_id,
                app_version=app_version,
                first_seen_at=now,
                last_seen_at=now,
                last_sync_at=now if synced else None,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        device = await session.get(
            Device, device_id, with_for_update=lock or None, populate_existing=True
        )
        assert device is not None
    if device.revoked_at is not None:
        raise DeviceRevoked(Text("device {device_id} has been revoked", device_id=device_id))
    changed = device.user_id != user_id or (
        app_version is not None and device.app_version != app_version
    )
    seen_stale = now - device.last_seen_at > TOUCH_GRANULARITY
    sync_stale = synced and (
        device.last_sync_at is None or now - device.last_sync_at > TOUCH_GRANULARITY
    )
    if changed or seen_stale or sync_stale:
        device.user_id = user_id
        if app_version is not None:
            device.app_version = app_version
        device.last_seen_at = max(device.last_seen_at, now)
        if synced:
            device.last_sync_at = max(device.last_sync_at or now, now)
        await session.flush()
    return device


async def register_device(
    session: AsyncSession, *, user: User, device_id: str, app_version: str | None, now: datetime
) -> Device:
    """A login on `device_id`: create the device or record who logged in on it, and when.

    Raises DeviceRevoked for a revoked device (the token endpoint answers `invalid_grant`).
    """
    # Locked so that a login and a concurrent revocation are ordered: either the login sees the
    # revocation, or the revocation (waiting for the lock) sees and revokes the login's family.
    return await _upsert(
        session,
        device_id,
        user_id=user.id,
        app_version=app_version,
        synced=False,
        now=now,
        lock=True,
    )


async def touch_device(
    session: AsyncSession,
    device_id: str,
    *,
    user_id: uuid.UUID,
    app_version: str | None = None,
    synced: bool = False,
    now: datetime,
) -> Device:
    """A refresh or sync from `device_id`: register it if unknown, update when it was last seen.

    `synced` also sets last_sync_at (a batch or a pull). Writes only when something changed or
    the times moved by more than a minute. Raises DeviceRevoked (403) for a revoked device.
    """
    return await _upsert(
        session,
        device_id,
        user_id=user_id,
        app_version=app_version,
        synced=synced,
        now=now,
        lock=False,
    )


def _visible(principal: Principal) -> ColumnElement[bool]:
    """The devices the caller may see: those of the users of its region for a county admin, town
    staff or an API client, otherwise their own."""
    if principal.role in (Role.county_admin, Role.town_staff, Role.api_client):
        return col(Device.user_id).in_(
            select(UserRegion.user_id).where(principal.within(UserRegion.region_code))
        )
    return col(Device.user_id) == principal.id


async def _with_users(session: AsyncSession, devices: list[Device]) -> list[DeviceRecord]:
    ids = {d.user_id for d in devices}
    users = (
        {u.id: u for u in await session.scalars(select(User).where(col(User.id).in_(ids)))}
        if ids
        else {}
    )
    return [DeviceRecord(d, users[d.user_id]) for d in devices]


async def list_devices(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    user_id: uuid.UUID | None = None,
) -> tuple[list[DeviceRecord], str | None]:
    """The devices the caller may see, by device id; optionally only those of one user."""
    stmt = select(Device).where(_visible(principal))
    if user_id is not None:
        stmt = stmt.where(col(Device.user_id) == user_id)
    devices, cursor = await paginate(session, stmt, keys=[col(Device.id)], page=page)
    return await _with_users(session, devices), cursor


async def revoke_device(
    session: AsyncSession, *, principal: Principal, device_id: str, now: datetime
) -> DeviceRecord:
    """A lost phone: refuse it from now on and end every login made on it (idempotent)."""
    device = await session.scalar(
        select(Device)
        .where(col(Device.id) == device_id, _visible(principal))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if device is None:
        raise DeviceNotFound(
            Text("device {device_id} does not exist or is not visible to you", device_id=device_id)
        )
    if device.revoked_at is None:
        device.revoked_at = now
        device.revoked_by = principal.id
        await session.flush()
    # Every time, not only the first: a login that raced the first revocation ends too.
    await session.execute(
        update(TokenFamily)
        .where(col(TokenFamily.device_id) == device_id, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=now, revoked_reason="device_revoked")
    )
    [record] = await _with_users(session, [device])
    return record
