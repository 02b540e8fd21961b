"""The exports of a region: its households (rows of the region progress's per-household query,
with each household's latest monitoring case) and its monitoring cases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, Select, Uuid, and_, case, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.auth.principal import Principal, within_regions
from app.core.config import get_settings
from app.core.db import Transactions
from app.exports.columns import (
    CASE_COLUMNS,
    COLUMNS,
    Cell,
    RowContext,
    case_cells,
    cells,
    tz_of,
)
from app.exports.writers import CASES_SHEET_NAME, SHEET_NAME
from app.exports.xlsx import Sheet
from app.households.models import Household, Member
from app.households.vocabulary import Relation, Status
from app.monitoring.models import MonitoringCase, MonitoringStep
from app.monitoring.vocabulary import CLOSED_CASE_STATUSES
from app.progress import region as region_progress
from app.progress.region import HouseholdRows
from app.regions import codes
from app.regions.models import Region

# Households (or cases) read from the database at a time, and written at a time.
PAGE_ROWS = 1000


def household_cases(household_ids: Sequence[uuid.UUID]) -> Select[Any]:
    """Per household of `household_ids`: its origin, and its latest monitoring case (an open
    one first; then by found_on, received_at, id, newest first), or NULLs."""
    c = MonitoringCase
    closed = sorted(status.value for status in CLOSED_CASE_STATUSES)
    ranked = (
        select(
            col(c.household_id),
            col(c.category),
            col(c.status),
            col(c.identified_on),
            col(c.cleared_on),
            col(c.clearing_method),
            func.row_number()
            .over(
                partition_by=col(c.household_id),
                order_by=(
                    case((col(c.status).in_(closed), 1), else_=0),
                    col(c.found_on).desc(),
                    col(c.received_at).desc(),
                    col(c.id).desc(),
                ),
            )
            .label("rank"),
        )
        .where(col(c.household_id).in_(household_ids))
        .subquery("latest_case")
    )
    return (
        select(
            col(Household.id).label("household_id"),
            col(Household.origin),
            ranked.c.category,
            ranked.c.status,
            ranked.c.identified_on,
            ranked.c.cleared_on,
            ranked.c.clearing_method,
        )
        .outerjoin(ranked, and_(ranked.c.household_id == Household.id, ranked.c.rank == 1))
        .where(col(Household.id).in_(household_ids))
    )


@dataclass(frozen=True)
class CaseRows:
    """The cases export's queries: the cases of the region's counted households page by page,
    ordered by household number, found_on and id (a keyset), and the rows of one page."""

    conditions: tuple[ColumnElement[bool], ...]

    def page(self, *, after: tuple[str, date, uuid.UUID] | None, limit: int) -> Select[Any]:
        c, h = MonitoringCase, Household
        keys = (col(h.number), col(c.found_on), col(c.id))
        stmt = (
            select(col(c.id), *keys[:2])
            .join(h, col(h.id) == col(c.household_id))
            .where(*self.conditions)
        )
        if after is not None:
            number, found_on, case_id = after
            stmt = stmt.where(
                tuple_(*keys)
                > tuple_(literal(number), literal(found_on, Date), literal(case_id, Uuid))
            )
        return stmt.order_by(*keys).limit(limit)

    def rows(self, case_ids: Sequence[uuid.UUID]) -> Select[Any]:
        c, h = MonitoringCase, Household
        steps = (
            select(
                col(MonitoringStep.case_id),
                func.count().label("steps"),
                func.max(col(MonitoringStep.seq)).label("last_seq"),
            )
            .where(col(MonitoringStep.case_id).in_(case_ids))
            .group_by(col(MonitoringStep.case_id))
            .subquery("steps")
        )
        last = aliased(MonitoringStep)
        heads = (
            select(
                col(Member.household_id),
                func.min(
                    case((col(Member.relation) == Relation.head.value, col(Member.id_number)))
                ).label("head_id_number"),
            )
            .where(
                col(Member.removed_at).is_(None),
                col(Member.household_id).in_(
                    select(col(c.household_id)).where(col(c.id).in_(case_ids))
                ),
            )
            .group_by(col(Member.household_id))
            .subquery("heads")
        )
        return (
            select(
                col(c.id).label("case_id"),
                col(c.household_id),
                col(h.number),
                col(h.village_code),
                col(h.head_name),
                col(h.phone),
                col(h.origin),
                heads.c.head_id_number,
                col(c.category),
                col(c.risk_types),
                col(c.found_via),
                col(c.found_on),
                col(c.status),
                col(c.identified_on),
                col(c.cleared_on),
                col(c.clearing_method),
                steps.c.steps,
                col(last.step).label("last_step"),
                col(last.decision).label("last_decision"),
                col(last.taken_at).label("last_taken_at"),
            )
            .join(h, col(h.id) == col(c.household_id))
            .outerjoin(heads, heads.c.household_id == col(c.household_id))
            .outerjoin(steps, steps.c.case_id == col(c.id))
            .outerjoin(
                last, and_(col(last.case_id) == col(c.id), col(last.seq) == steps.c.last_seq)
            )
            .where(col(c.id).in_(case_ids))
            .order_by(col(h.number), col(c.found_on), col(c.id))
        )


class Export:
    """A prepared export: the region checked and the queries built, no row read yet."""

    def __init__(self, queries: HouseholdRows, cases: CaseRows, context: RowContext) -> None:
        self.queries = queries
        self.cases = cases
        self.context = context

    async def partitions(self, transactions: Transactions) -> AsyncIterator[list[list[Cell]]]:
        """The households' cells, a page of households at a time, from a read transaction of
        their own (the request's session is gone once a streamed response has started)."""
        after: str | None = None
        async with transactions(writing=False) as session:
            while True:
                page = (
                    await session.execute(self.queries.page(after=after, limit=PAGE_ROWS))
                ).all()
                if not page:
                    return
                ids = [row.id for row in page]
                rows = await session.execute(self.queries.rows(ids))
                latest = {
                    row.household_id: row for row in await session.execute(household_cases(ids))
                }
                yield [cells(row, latest.get(row.household_id), self.context) for row in rows]
                if len(page) < PAGE_ROWS:
                    return
                after = page[-1].number

    async def case_partitions(self, transactions: Transactions) -> AsyncIterator[list[list[Cell]]]:
        """The monitoring cases' cells, a page at a time (as `partitions`)."""
        after: tuple[str, date, uuid.UUID] | None = None
        async with transactions(writing=False) as session:
            while True:
                page = (await session.execute(self.cases.page(after=after, limit=PAGE_ROWS))).all()
                if not page:
                    return
                rows = await session.execute(self.cases.rows([row.id for row in page]))
                yield [case_cells(row, self.context) for row in rows]
                if len(page) < PAGE_ROWS:
                    return
                after = (page[-1].number, page[-1].found_on, page[-1].id)


async def prepare(
    session: AsyncSession, *, principal: Principal, code: str, now: datetime
) -> Export:
    """Check the region (404/422 before any byte is sent) and build the export's queries."""
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
    village = col(Household.village_code)
    cases = CaseRows(
        (
            within_regions([code], village),
            principal.within(village),
            # The households the household export counts: all but removed ones (注销/清退);
            # ordinary households (一般农户) have no status.
            col(Household.status).is_distinct_from(Status.removed.value),
        )
    )
    return Export(queries, cases, context)


def xlsx_sheets(export: Export, transactions: Transactions) -> list[Sheet]:
    """The workbook's sheets: households, then monitoring cases, each read as it is written."""
    return [
        Sheet(SHEET_NAME, COLUMNS, export.partitions(transactions)),
        Sheet(CASES_SHEET_NAME, CASE_COLUMNS, export.case_partitions(transactions)),
    ]
