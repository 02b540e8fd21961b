"""The household export of a region: rows of the region progress's per-household query."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.principal import Principal, within_regions
from app.core.config import get_settings
from app.core.db import Transactions
from app.exports.columns import Cell, RowContext, cells, tz_of
from app.exports.writers import XlsxSheet
from app.progress import region as region_progress
from app.progress.region import HouseholdRows
from app.regions import codes
from app.regions.models import Region

# Households read from the database at a time, and written at a time.
PAGE_ROWS = 1000


class Export:
    """A prepared export: the region checked and the queries built, no row read yet."""

    def __init__(self, queries: HouseholdRows, context: RowContext) -> None:
        self.queries = queries
        self.context = context

    async def partitions(self, transactions: Transactions) -> AsyncIterator[list[list[Cell]]]:
        """The rows' cells, a page of households at a time, from a read transaction of their
        own (the request's session is gone once a streamed response has started)."""
        after: str | None = None
        async with transactions(writing=False) as session:
            while True:
                page = (
                    await session.execute(self.queries.page(after=after, limit=PAGE_ROWS))
                ).all()
                if not page:
                    return
                rows = await session.execute(self.queries.rows([row.id for row in page]))
                yield [cells(row, self.context) for row in rows]
                if len(page) < PAGE_ROWS:
                    return
                after = page[-1].number


async def prepare(
    session: AsyncSession, *, principal: Principal, code: str, now: datetime
) -> Export:
    """Check the region (404/422 before any byte is sent) and build the export's query."""
    queries = await region_progress.household_rows(session, principal=principal, code=code, now=now)
    names = await session.execute(
        select(col(Region.code), col(Region.name)).where(
            within_regions([code], col(Region.code)),
            col(Region.level) == int(codes.Level.village),
        )
    )
    context = RowContext(
        principal=principal,
        village_names={code: name for code, name in names},
        tz=tz_of(get_settings().report_utc_offset_minutes),
    )
    return Export(queries, context)


async def build_xlsx(export: Export, transactions: Transactions) -> Path:
    """Write the XLSX file to a temporary file and return its path (the caller removes it)."""
    handle, name = tempfile.mkstemp(prefix="fieldsync-export-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        sheet = await anyio.to_thread.run_sync(XlsxSheet, path)
        async for rows in export.partitions(transactions):
            await anyio.to_thread.run_sync(sheet.write, rows)
        await anyio.to_thread.run_sync(sheet.close)
    except BaseException:
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    return path
