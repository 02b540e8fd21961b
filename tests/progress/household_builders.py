"""Builders that insert a household's field records directly through a session.

For tests that need many records, or records dated anywhere (no "in the future" check against the
real clock). The rows are made from the phone's write bodies with the same conversion the API uses
(`app.records.convert`), so computed columns (net income, per capita, content hash) and the photo
reference index are consistent with what a sync would have stored.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from app.households.models import Household
from app.photos.models import Photo, PhotoHolder
from app.photos.refs import index_photo_refs
from app.records import convert
from app.records import service as records_service
from app.records.models import IncomeSnapshot, Measure, MeasureRevision, Visit
from app.records.schemas import IncomeSnapshotWrite, MeasureWrite, VisitWrite
from app.records.vocabulary import RecordType
from app.thresholds.models import PovertyThreshold
from app.users.models import User


def record_id(n: int) -> uuid.UUID:
    """A readable fixed id: record_id(7) == 00000000-0000-4000-8000-000000000007."""
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


def sha(n: int) -> str:
    """A fixed sha256-shaped photo hash."""
    return f"{n:064x}"


async def _store(
    session: AsyncSession,
    record_type: RecordType,
    data: Any,
    columns: dict[str, Any],
    *,
    author: User,
    id: uuid.UUID | None,
) -> Any:
    kind = records_service.KINDS[record_type]
    record = records_service.new_record(
        kind.model,
        record_id=id or uuid.uuid4(),
        data=data,
        columns=columns,
        author_id=author.id,
        device_id=None,
        now=utcnow(),
    )
    session.add(record)
    await session.flush()
    await index_photo_refs(session, record_type.value, record, replace=False)
    return record


async def add_snapshot(
    session: AsyncSession,
    household: Household,
    *,
    author: User,
    year: int,
    recorded_at: datetime,
    kind: str = "annual",
    household_size: int = 3,
    id: uuid.UUID | None = None,
    **components: Decimal | str | int,
) -> IncomeSnapshot:
    """An income snapshot; components in yuan (wage_income=…), totals computed as the API does."""
    data = IncomeSnapshotWrite.model_validate(
        {
            "revision": 1,
            "household_id": household.id,
            "year": year,
            "kind": kind,
            "household_size": household_size,
            "recorded_at": recorded_at,
            **components,
        }
    )
    snapshot: IncomeSnapshot = await _store(
        session,
        RecordType.income_snapshot,
        data,
        convert.snapshot_columns(data),
        author=author,
        id=id,
    )
    return snapshot


async def add_visit(
    session: AsyncSession,
    household: Household,
    *,
    author: User,
    visited_at: datetime,
    checks: dict[str, str] | None = None,
    photos: list[dict[str, Any]] | None = None,
    mode: str = "in_home",
    id: uuid.UUID | None = None,
) -> Visit:
    """A visit; `checks` maps indicators to ok/not_ok (others unknown); `photos` are PhotoRefs."""
    data = VisitWrite.model_validate(
        {
            "revision": 1,
            "household_id": household.id,
            "visited_at": visited_at,
            "mode": mode,
            "checks": checks or {},
            "photos": photos or [],
        }
    )
    visit: Visit = await _store(
        session,
        RecordType.visit,
        data,
        convert.visit_columns(data, now=utcnow()),
        author=author,
        id=id,
    )
    return visit


async def add_measure(
    session: AsyncSession,
    household: Household,
    *,
    author: User,
    title: str,
    status: str = "planned",
    category: str = "other",
    funds_yuan: str | None = None,
    funds_spent_yuan: str | None = None,
    start_date: date | None = None,
    due_date: date | None = None,
    progress_reports: list[dict[str, Any]] | None = None,
    id: uuid.UUID | None = None,
) -> Measure:
    """A support measure (and its revision row, as the API keeps one per accepted revision)."""
    data = MeasureWrite.model_validate(
        {
            "revision": 1,
            "household_id": household.id,
            "category": category,
            "title": title,
            "funds_yuan": funds_yuan,
            "funds_spent_yuan": funds_spent_yuan,
            "start_date": start_date,
            "due_date": due_date,
            "status": status,
            "progress_reports": progress_reports or [],
        }
    )
    measure: Measure = await _store(
        session,
        RecordType.measure,
        data,
        convert.measure_columns(data),
        author=author,
        id=id,
    )
    session.add(
        MeasureRevision(
            measure_id=measure.id,
            household_id=measure.household_id,
            revision=measure.revision,
            status=measure.status,
            progress_pct=measure.progress_pct,
            received_at=measure.updated_at,
            author_id=author.id,
        )
    )
    await session.flush()
    return measure


async def hold_photo(
    session: AsyncSession, sha256: str, *, household: Household, sender: User
) -> Photo:
    """The server holds the bytes of `sha256`, sent by `sender` for `household` (the rows only:
    no bytes in a store)."""
    photo = Photo(
        sha256=sha256,
        size_bytes=1024,
        content_type="image/jpeg",
        household_id=household.id,
    )
    session.add(photo)
    await session.flush()
    session.add(PhotoHolder(sha256=sha256, household_id=household.id, user_id=sender.id))
    await session.flush()
    return photo


async def set_threshold(
    session: AsyncSession,
    *,
    scope: str,
    year: int,
    poverty_line_fen: int | None = None,
    monitoring_threshold_fen: int | None = None,
) -> PovertyThreshold:
    """A poverty line and/or monitoring threshold row (national rows come from the migrations)."""
    row = PovertyThreshold(
        scope=scope,
        year=year,
        poverty_line=poverty_line_fen,
        monitoring_threshold=monitoring_threshold_fen,
    )
    session.add(row)
    await session.flush()
    return row
