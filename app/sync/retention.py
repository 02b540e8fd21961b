"""Forgetting old delete entries of the change feed (the rest of the log is the data itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.sync import changelog
from app.sync.models import Change, ChangeCounter


@dataclass(frozen=True)
class Pruned:
    deleted: int
    horizon: int


async def prune_deletes(session: AsyncSession, *, older_than_days: int, now: datetime) -> Pruned:
    """Drop delete entries older than the retention; cursors from before them then get 410.

    The horizon is the highest number dropped: a phone whose cursor lies below it may have missed
    a deletion and must download afresh.
    """
    cutoff = now - timedelta(days=older_than_days)
    old = (col(Change.op) == changelog.DELETE, col(Change.changed_at) < cutoff)
    highest = await session.scalar(select(func.max(Change.seq)).where(*old))
    if highest is None:
        counter = await session.get(ChangeCounter, 1)
        return Pruned(0, counter.horizon if counter else 0)
    result = cast(
        CursorResult[Any],
        await session.execute(delete(Change).where(*old, col(Change.seq) <= highest)),
    )
    await session.execute(
        update(ChangeCounter)
        .where(col(ChangeCounter.id) == 1, col(ChangeCounter.horizon) < highest)
        .values(horizon=highest)
    )
    counter = await session.get(ChangeCounter, 1, populate_existing=True)
    return Pruned(int(result.rowcount or 0), counter.horizon if counter else highest)
