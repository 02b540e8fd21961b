"""The county's view of sync: which devices are behind, what was rejected, what is missing.

Everything is computed with aggregate queries over the devices of the region. The ETag comes
from a handful of indexed maxima (and the hour), so a poll that changes nothing costs one small
query and answers 304.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal, within_regions
from app.core.config import Settings
from app.core.errors import NotFound
from app.core.i18n import Text
from app.devices.models import Device
from app.regions import codes
from app.regions.models import Region
from app.sync.models import Change, SyncBatch, SyncConflict
from app.sync.photo_backlog import photo_backlog
from app.sync.schemas import ItemStatus
from app.users.models import User, UserRegion


def region_of(principal: Principal, region: str | None) -> str:
    if region is None:
        if len(principal.region_codes) != 1:
            raise NotFound(Text("give `region`: you are assigned several regions"))
        return principal.region_codes[0]
    if not principal.covers(region):
        raise NotFound(
            Text("region {region} does not exist or is not visible to you", region=region)
        )
    return region


async def etag(session: AsyncSession, *, region: str, settings: Settings, now: datetime) -> str:
    """Changes whenever anything the status shows may have changed (and every hour)."""
    maxima = sa_select(
        select(func.max(Change.seq)).scalar_subquery(),
        select(func.max(SyncBatch.received_at)).scalar_subquery(),
        select(func.max(Device.last_seen_at)).scalar_subquery(),
        select(func.max(Device.last_sync_at)).scalar_subquery(),
        select(func.max(Device.revoked_at)).scalar_subquery(),
        select(func.max(SyncConflict.updated_at)).scalar_subquery(),
        photo_backlog().last_stored_at(),
        select(func.max(User.updated_at)).scalar_subquery(),
    )
    values = (await session.execute(maxima)).one()
    basis = "|".join(
        [region, now.strftime("%Y%m%d%H"), str(settings.sync_behind_days)]
        + [str(v) for v in values]
    )
    return '"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


async def sync_status(
    session: AsyncSession, *, region: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    in_region = within_regions([region], col(UserRegion.region_code))
    device_rows = (
        await session.execute(
            select(Device, User)
            .join(User, col(User.id) == col(Device.user_id))
            .where(exists().where(col(UserRegion.user_id) == col(Device.user_id), in_region))
            .order_by(col(Device.id))
        )
    ).all()
    devices = [d for d, _ in device_rows]
    ids = [d.id for d in devices]
    user_ids = {d.user_id for d in devices}

    villages_of: dict[Any, list[str]] = defaultdict(list)
    if user_ids:
        for user_id, code in await session.execute(
            select(UserRegion.user_id, UserRegion.region_code)
            .where(col(UserRegion.user_id).in_(user_ids), in_region)
            .order_by(col(UserRegion.region_code))
        ):
            villages_of[user_id].append(code)

    day, week = now - timedelta(days=1), now - timedelta(days=7)
    activity: dict[str, tuple[int, int, int]] = {}
    last_batch: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, int] = {}
    missing: dict[str, int] = {}
    if ids:
        for device_id, r24, r7, rejected in await session.execute(
            select(
                SyncBatch.device_id,
                func.sum(case((col(SyncBatch.received_at) > day, SyncBatch.record_count), else_=0)),
                func.sum(SyncBatch.record_count),
                func.sum(SyncBatch.rejected),
            )
            .where(col(SyncBatch.device_id).in_(ids), col(SyncBatch.received_at) > week)
            .group_by(col(SyncBatch.device_id))
        ):
            activity[device_id] = (int(r24 or 0), int(r7 or 0), int(rejected or 0))
        latest = (
            select(SyncBatch.device_id, func.max(SyncBatch.received_at).label("at"))
            .where(col(SyncBatch.device_id).in_(ids))
            .group_by(col(SyncBatch.device_id))
            .subquery()
        )
        for batch in await session.scalars(
            select(SyncBatch).join(
                latest,
                (col(SyncBatch.device_id) == latest.c.device_id)
                & (col(SyncBatch.received_at) == latest.c.at),
            )
        ):
            last_batch[batch.device_id] = {
                "batch_id": str(batch.id),
                "received_at": _iso(batch.received_at),
                "counts": {s.value: getattr(batch, s.value) for s in ItemStatus},
            }
        conflicts = dict(
            (
                await session.execute(
                    select(SyncConflict.device_id, func.count())
                    .where(col(SyncConflict.device_id).in_(ids), col(SyncConflict.status) == "open")
                    .group_by(col(SyncConflict.device_id))
                )
            ).all()
        )
        missing = await photo_backlog().by_device(session, ids)

    behind_after = timedelta(days=settings.sync_behind_days)
    device_docs: list[dict[str, Any]] = []
    for device, user in device_rows:
        r24, r7, rejected = activity.get(device.id, (0, 0, 0))
        synced = device.last_sync_at
        device_docs.append(
            {
                "device_id": device.id,
                "user": {
                    "id": str(user.id),
                    "username": user.username,
                    "display_name": user.display_name,
                    "role": user.role,
                },
                "villages": villages_of.get(user.id, []),
                "app_version": device.app_version,
                "first_seen_at": _iso(device.first_seen_at),
                "last_seen_at": _iso(device.last_seen_at),
                "last_sync_at": _iso(synced),
                "revoked": device.revoked_at is not None,
                "last_batch": last_batch.get(device.id),
                "records_24h": r24,
                "records_7d": r7,
                "rejected_7d": rejected,
                "open_conflicts": int(conflicts.get(device.id, 0)),
                "photos_missing": int(missing.get(device.id, 0)),
                "days_since_last_sync": (now - synced).days if synced else None,
                # A login that never sent a batch nor pulled (the county PC, a test login) is
                # shown apart, not among the phones that are behind.
                "never_synced": synced is None,
                "behind": device.revoked_at is None
                and synced is not None
                and now - synced > behind_after,
            }
        )
    village_docs = await _villages(session, region=region, devices=device_docs)
    summary = {
        **_device_counts(device_docs),
        "records_24h": sum(d["records_24h"] for d in device_docs),
        "records_7d": sum(d["records_7d"] for d in device_docs),
        "rejected_7d": sum(d["rejected_7d"] for d in device_docs),
        "open_conflicts": sum(v["open_conflicts"] for v in village_docs),
        "photos_missing": await photo_backlog().in_regions(session, [region]),
    }
    return {
        "region": region,
        "generated_at": _iso(now),
        "behind_after_days": settings.sync_behind_days,
        "summary": summary,
        "villages": village_docs,
        "devices": device_docs,
    }


def _device_counts(devices: list[dict[str, Any]]) -> dict[str, int]:
    """Phones (live devices that have synced), those behind, and logins never synced."""
    live = [d for d in devices if not d["revoked"]]
    return {
        "devices": sum(not d["never_synced"] for d in live),
        "devices_behind": sum(d["behind"] for d in live),
        "devices_never_synced": sum(d["never_synced"] for d in live),
    }


async def _villages(
    session: AsyncSession, *, region: str, devices: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One line per village of the region, with its devices' standing."""
    villages = list(
        await session.execute(
            select(Region.code, Region.name)
            .where(
                col(Region.level) == int(codes.Level.village),
                within_regions([region], col(Region.code)),
            )
            .order_by(col(Region.code))
        )
    )
    conflicts = dict(
        (
            await session.execute(
                select(SyncConflict.village_code, func.count())
                .where(
                    col(SyncConflict.status) == "open",
                    within_regions([region], col(SyncConflict.village_code)),
                )
                .group_by(col(SyncConflict.village_code))
            )
        ).all()
    )
    missing = await photo_backlog().by_village(session, region)
    out = []
    for code, name in villages:
        own = [d for d in devices if code in d["villages"]]
        synced = [d["last_sync_at"] for d in own if d["last_sync_at"] and not d["revoked"]]
        out.append(
            {
                "code": code,
                "name": name,
                **_device_counts(own),
                "last_sync_at": max(synced) if synced else None,
                "records_7d": sum(d["records_7d"] for d in own),
                "open_conflicts": int(conflicts.get(code, 0)),
                "photos_missing": int(missing.get(code, 0)),
            }
        )
    return out
