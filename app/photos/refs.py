"""The photo references of records, indexed so that missing photos are one query away."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, delete, exists
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.photos.models import Photo, PhotoRef
from app.records.models import Measure, RecordColumns, Visit


def _photos_of(record: RecordColumns) -> Iterator[dict[str, Any]]:
    if isinstance(record, Visit):
        yield from record.photos
    elif isinstance(record, Measure):
        for report in record.progress_reports:
            yield from report.get("photos") or []


async def index_photo_refs(
    session: AsyncSession, record_type: str, record: RecordColumns, *, replace: bool = True
) -> None:
    """Replace the stored references of `record` with those of its current revision.

    `replace=False` for a record just created, which has none yet.
    """
    if replace:
        await session.execute(
            delete(PhotoRef).where(
                col(PhotoRef.record_type) == record_type, col(PhotoRef.record_id) == record.id
            )
        )
    refs: dict[str, PhotoRef] = {}
    for photo in _photos_of(record):
        refs.setdefault(
            photo["sha256"],
            PhotoRef(
                sha256=photo["sha256"],
                record_type=record_type,
                record_id=record.id,
                household_id=record.household_id,
                author_id=record.author_id,
                device_id=record.device_id,
                tag=photo.get("tag"),
            ),
        )
    if refs:
        session.add_all(refs.values())
        await session.flush()


def not_held() -> ColumnElement[bool]:
    """SQL condition: the server does not hold the bytes of this PhotoRef's photo yet."""
    return ~exists().where(col(Photo.sha256) == col(PhotoRef.sha256))


async def missing_photos(session: AsyncSession, *, author_id: uuid.UUID) -> list[str]:
    """sha256 of photos the author's records reference and the server does not hold yet."""
    rows = await session.scalars(
        select(PhotoRef.sha256)
        .where(col(PhotoRef.author_id) == author_id, not_held())
        .distinct()
        .order_by(col(PhotoRef.sha256))
    )
    return list(rows)
