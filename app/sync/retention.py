"""Forgetting old delete entries of the change feed (the rest of the log is the data itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, not_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.sync import changelog
from app.sync.changelog import Position
from app.sync.models import Change, ChangeCounter


@dataclass(frozen=True)
class Pruned:
    deleted: int
    horizon: Position


async def prune_deletes(session: AsyncSession, *, older_than_days: int, now: datetime) -> Pruned:
    """Drop delete entries older than the retention; cursors from before them then get 410.

    The horizon is the latest position dropped: a phone whose cursor lies before it may have
    missed a deletion and must download afresh.
    """
    cutoff = now - timedelta(days=older_than_days)
    old = (col(Change.op) == changelog.DELETE, col(Change.changed_at) < cutoff)
    counter = await session.get(ChangeCounter, 1, with_for_update=True)
    horizon = (counter.horizon_txid, counter.horizon) if counter is not None else (0, 0)
    last = (
        await session.execute(
            select(col(Change.txid), col(Change.seq))
            .where(*old)
            .order_by(col(Change.txid).desc(), col(Change.seq).desc())
            .limit(1)
        )
    ).first()
    if last is None:
        return Pruned(0, horizon)
    highest: Position = (int(last[0]), int(last[1]))
    result = cast(
        CursorResult[Any],
        await session.execute(delete(Change).where(*old, not_(changelog.after(highest)))),
    )
    if counter is not None and highest > horizon:
        counter.horizon_txid, counter.horizon = highest
        horizon = highest
        await session.flush()
    return Pruned(int(result.rowcount or 0), horizon)
