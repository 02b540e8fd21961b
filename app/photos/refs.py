"""The photo references of records, indexed so that missing photos are one query away."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.monitoring.models import MonitoringCase
from app.photos.models import Photo, PhotoHolder, PhotoRef
from app.records.events import RecordWritten
from app.records.models import Measure, RecordColumns, Visit


def _photos_of(record: RecordColumns) -> Iterator[tuple[dict[str, Any], uuid.UUID | None]]:
    """Each photo reference of the record, with the measure it documents."""
    if isinstance(record, Visit | MonitoringCase):
        for photo in record.photos:
            measure_id = photo.get("measure_id")
            yield photo, uuid.UUID(str(measure_id)) if measure_id else None
    elif isinstance(record, Measure):
        for report in record.progress_reports:
            for photo in report.get("photos") or []:
                yield photo, record.id


async def index_photo_refs(
    session: AsyncSession, record_type: str, record: RecordColumns, *, replace: bool = True
) -> None:
    """Replace the stored references of `record` with those of its current revision.

    `replace=False` for a record just created, which has none yet.
    """
    if replace:
        await session.flush()  # references added earlier in this transaction are replaced too
        await session.execute(
            delete(PhotoRef).where(
                col(PhotoRef.record_type) == record_type, col(PhotoRef.record_id) == record.id
            )
        )
    refs: dict[str, PhotoRef] = {}
    for photo, measure_id in _photos_of(record):
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
                measure_id=measure_id,
            ),
        )
    session.add_all(refs.values())  # inserted with the transaction's next flush


async def on_record_written(session: AsyncSession, event: RecordWritten) -> None:
    """Subscriber: the references of a record written, indexed."""
    await index_photo_refs(session, event.record_type, event.record, replace=not event.created)


def held_for_ref() -> ColumnElement[bool]:
    """SQL condition: the server holds this PhotoRef's photo *for the ref*: its bytes were sent
    for the ref's household, or by the ref's author. A sha256 copied from another county's
    record proves nothing, so such a photo counts as not held where the copy names it."""
    return exists().where(
        col(PhotoHolder.sha256) == col(PhotoRef.sha256),
        or_(
            col(PhotoHolder.household_id) == col(PhotoRef.household_id),
            col(PhotoHolder.user_id) == col(PhotoRef.author_id),
        ),
    )


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
