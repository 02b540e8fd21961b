"""The photos the server is still waiting for, as the sync status and batch answers show them
(`app.sync.photo_backlog.PhotoBacklog`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import within_regions
from app.households.models import Household
from app.photos.models import Photo, PhotoRef
from app.photos.refs import missing_photos, not_held


class PhotoBacklogQueries:
    def last_stored_at(self) -> Any:
        return select(func.max(Photo.stored_at)).scalar_subquery()

    async def of_author(self, session: AsyncSession, author_id: uuid.UUID) -> list[str]:
        return await missing_photos(session, author_id=author_id)

    async def by_device(self, session: AsyncSession, device_ids: list[str]) -> dict[str, int]:
        rows = await session.execute(
            select(PhotoRef.device_id, func.count(func.distinct(PhotoRef.sha256)))
            .where(col(PhotoRef.device_id).in_(device_ids), not_held())
            .group_by(col(PhotoRef.device_id))
        )
        return {device: count for device, count in rows.all() if device is not None}

    async def in_regions(self, session: AsyncSession, regions: list[str]) -> int:
        count = await session.scalar(
            select(func.count(func.distinct(PhotoRef.sha256)))
            .join(Household, col(Household.id) == col(PhotoRef.household_id))
            .where(within_regions(regions, col(Household.village_code)), not_held())
        )
        return int(count or 0)

    async def by_village(self, session: AsyncSession, region: str) -> dict[str, int]:
        rows = await session.execute(
            select(Household.village_code, func.count(func.distinct(PhotoRef.sha256)))
            .join(Household, col(Household.id) == col(PhotoRef.household_id))
            .where(within_regions([region], col(Household.village_code)), not_held())
            .group_by(col(Household.village_code))
        )
        return {village: count for village, count in rows.all()}
