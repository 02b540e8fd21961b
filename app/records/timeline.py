"""One household's history in time order: visits, income snapshots, measure changes, status changes.

One UNION ALL query with a common shape, ordered and paginated by (time, event id) in SQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Uuid,
    case,
    cast,
    func,
    literal,
    null,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import Null
from sqlmodel import col

from app.auth.principal import Principal
from app.core.base import UTCDateTime
from app.core.errors import InvalidInput
from app.core.i18n import Text
from app.core.money import fen_str
from app.core.pagination import PageParams, cursor_datetime, decode_cursor, encode_cursor
from app.households import service as households_service
from app.households.models import HouseholdChange
from app.records.models import IncomeSnapshot, MeasureRevision, Visit

EventType = Literal[
    "visit", "income_snapshot", "measure_created", "measure_updated", "status_changed"
]


class TimelineEvent(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-07-15T02:00:00Z",
                    "type": "measure_updated",
                    "record_id": "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b",
                    "detail": {"revision": 2, "status": "in_progress", "progress_pct": 60},
                }
            ]
        }
    )

    at: datetime = Field(description="When it happened: visited_at, recorded_at, or server time.")
    type: EventType
    record_id: uuid.UUID | None = Field(
        description="The visit, snapshot or measure; null for status."
    )
    detail: dict[str, Any] = Field(
        description="By type: visit {mode}; income_snapshot {kind, year, per_capita_income}; "
        "measure_* {revision, status, progress_pct}; status_changed {from, to}, and "
        "override_reason when the county admin set an exit the exit rule did not support."
    )


def _typed(value: Any, type_: Any) -> Any:
    # NULLs get a real CAST so every UNION branch agrees on types (PostgreSQL); columns keep
    # their own SQL and only tell SQLAlchemy how to read them (SQLite cannot CAST to a datetime).
    return cast(value, type_) if isinstance(value, Null) else type_coerce(value, type_)


def _shape(
    *,
    at: Any,
    type_: str,
    event_id: Any,
    record_id: Any,
    a: Any,
    b: Any,
    n: Any,
    m: Any,
    c: Any = None,
) -> list[Any]:
    return [
        _typed(at, UTCDateTime).label("at"),
        literal(type_, String).label("type"),
        _typed(event_id, Uuid).label("event_id"),
        _typed(record_id, Uuid).label("record_id"),
        _typed(a, String).label("a"),
        _typed(b, String).label("b"),
        _typed(n, BigInteger).label("n"),
        _typed(m, Integer).label("m"),
        _typed(null() if c is None else c, String).label("c"),
    ]


async def household_timeline(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, page: PageParams
) -> tuple[list[TimelineEvent], str | None]:
    household = await households_service.get_household(
        session, principal=principal, household_id=household_id
    )
    visits = select(
        *_shape(
            at=col(Visit.visited_at),
            type_="visit",
            event_id=col(Visit.id),
            record_id=col(Visit.id),
            a=col(Visit.mode),
            b=null(),
            n=null(),
            m=null(),
        )
    ).where(col(Visit.household_id) == household.id)
    snapshots = select(
        *_shape(
            at=col(IncomeSnapshot.recorded_at),
            type_="income_snapshot",
            event_id=col(IncomeSnapshot.id),
            record_id=col(IncomeSnapshot.id),
            a=col(IncomeSnapshot.kind),
            b=null(),
            n=col(IncomeSnapshot.per_capita_income),
            m=col(IncomeSnapshot.year),
        )
    ).where(col(IncomeSnapshot.household_id) == household.id)
    # The first revision the server received created the measure: the phone may have edited it
    # before it ever synced, so that is not necessarily revision 1.
    earlier = aliased(MeasureRevision)
    first_revision = (
        select(func.min(col(earlier.revision)))
        .where(col(earlier.measure_id) == col(MeasureRevision.measure_id))
        .scalar_subquery()
    )
    measures = select(
        *_shape(
            at=col(MeasureRevision.received_at),
            type_="measure",
            event_id=col(MeasureRevision.id),
            record_id=col(MeasureRevision.measure_id),
            a=col(MeasureRevision.status),
            b=case((col(MeasureRevision.revision) == first_revision, "created"), else_="updated"),
            n=col(MeasureRevision.revision),
            m=col(MeasureRevision.progress_pct),
        )
    ).where(col(MeasureRevision.household_id) == household.id)
    statuses = select(
        *_shape(
            at=col(HouseholdChange.changed_at),
            type_="status_changed",
            event_id=col(HouseholdChange.id),
            record_id=null(),
            a=col(HouseholdChange.status_to),
            b=col(HouseholdChange.status_from),
            n=null(),
            m=null(),
            c=col(HouseholdChange.override_reason),
        )
    ).where(
        col(HouseholdChange.household_id) == household.id,
        col(HouseholdChange.status_to).is_not(None),
    )
    events = union_all(visits, snapshots, measures, statuses).subquery("events")
    stmt = select(events)
    if page.cursor:
        at_text, id_text = decode_cursor(page.cursor, size=2)
        try:
            after = (
                literal(cursor_datetime(at_text), UTCDateTime),
                literal(uuid.UUID(id_text), Uuid),
            )
        except ValueError:
            raise InvalidInput.field(
                "query.cursor", Text("cursor is not one this API issued")
            ) from None
        stmt = stmt.where(tuple_(events.c.at, events.c.event_id) > tuple_(*after))
    stmt = stmt.order_by(events.c.at, events.c.event_id).limit(page.limit + 1)
    rows = (await session.execute(stmt)).all()
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        next_cursor = encode_cursor([rows[-1].at.isoformat(), rows[-1].event_id])
    return [_event(row) for row in rows], next_cursor


def _event(row: Any) -> TimelineEvent:
    if row.type == "visit":
        return TimelineEvent(
            at=row.at, type="visit", record_id=row.record_id, detail={"mode": row.a}
        )
    if row.type == "income_snapshot":
        detail = {"kind": row.a, "year": row.m, "per_capita_income": fen_str(int(row.n))}
        return TimelineEvent(
            at=row.at, type="income_snapshot", record_id=row.record_id, detail=detail
        )
    if row.type == "measure":
        revision = int(row.n)
        return TimelineEvent(
            at=row.at,
            type="measure_created" if row.b == "created" else "measure_updated",
            record_id=row.record_id,
            detail={"revision": revision, "status": row.a, "progress_pct": row.m},
        )
    detail = {"from": row.b, "to": row.a}
    if row.c is not None:  # the county admin set it though the exit rule did not hold
        detail["override_reason"] = row.c
    return TimelineEvent(at=row.at, type="status_changed", record_id=None, detail=detail)
