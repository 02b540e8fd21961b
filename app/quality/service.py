"""Data-quality issues of the caller's villages: checked per request, paged and counted.

Issues are computed, not stored: the list is ordered by (kind, village_code, record_id) and a
cursor holds that triple, so a walk stays exact while records change (a fixed record drops out,
a new issue shows up in its place). Queries per request, besides authentication:

1. every kind but one, in SQL: one statement whose CTE is the UNION ALL of the checks (one
   SELECT per kind), read twice: the page from the cursor on (ORDER BY … LIMIT) and the
   counts (GROUP BY kind, village);
2. when the page holds duplicate ID numbers: the other holders of those numbers;
3. visit_far_from_village (when asked for): the positions of in-person visits, streamed by
   village (medians and distances in Python), then the households of the visits found far.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    cast,
    func,
    literal,
    null,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.auth.principal import Principal, region_filter
from app.core.errors import InvalidInput, NotFound
from app.core.i18n import Text
from app.core.pagination import PageParams, decode_cursor, encode_cursor
from app.households.models import Household, Member
from app.households.vocabulary import Status
from app.quality import positions
from app.quality.checks import SQL_CHECKS
from app.quality.describe import Holder, from_row
from app.quality.schemas import IssueCounts, QualityIssue, QualityIssuePage
from app.quality.scope import Scope, current
from app.quality.vocabulary import KIND_ORDER, IssueKind

Key = tuple[int, str, uuid.UUID]  # (kind rank, village_code, record_id)
KIND_BY_RANK = {rank: kind for kind, rank in KIND_ORDER.items()}


def _scope(principal: Principal, region: str | None, *, today: date) -> Scope:
    """Households the caller may see (removed ones, 注销/清退, are not checked), under `region`."""
    scope = [
        principal.within(col(Household.village_code)),
        # Ordinary households (一般农户) have no status: NULL is not "removed".
        col(Household.status).is_distinct_from(Status.removed.value),
    ]
    if region is not None:
        under = region_filter(region, col(Household.village_code))
        if not principal.covers(region):
            raise NotFound(
                Text("region {region} does not exist or is not visible to you", region=region)
            )
        scope.append(under)
    return Scope(scope, today=today)


def _after(cursor: str | None) -> Key | None:
    if cursor is None:
        return None
    kind, village_code, record_id = decode_cursor(cursor, size=3)
    try:
        return KIND_ORDER[IssueKind(kind)], village_code, uuid.UUID(record_id)
    except ValueError:
        raise InvalidInput.field(
            "query.cursor", Text("cursor is not one this API issued")
        ) from None


def _key(issue: QualityIssue) -> Key:
    return KIND_ORDER[issue.kind], issue.village_code, issue.record_id


async def _holders(
    session: AsyncSession, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Holder]]:
    """For each member, the other current members holding the same ID number, and where."""
    out: dict[uuid.UUID, list[Holder]] = defaultdict(list)
    if not member_ids:
        return out
    other = aliased(Member)
    rows = await session.execute(
        select(
            col(Member.id),
            col(other.household_id),
            col(Household.number),
            col(Household.village_code),
        )
        .join(
            other,
            and_(
                col(other.id_number_hash) == Member.id_number_hash,
                col(other.id) != Member.id,
                current(other),
            ),
        )
        .join(Household, col(Household.id) == other.household_id)
        .where(col(Member.id).in_(member_ids))
    )
    for member_id, household_id, number, village_code in rows:
        out[member_id].append(Holder(household_id, number, village_code))
    return out


async def _sql_issues(
    session: AsyncSession, checks: list[Select[Any]], *, after: Key | None, limit: int
) -> tuple[list[Any], list[tuple[IssueKind, str, int]]]:
    """One statement over the union of the SQL checks, evaluated once (a CTE read twice is
    materialized, by PostgreSQL and SQLite alike): the first `limit` issues after the cursor,
    and the number of issues per kind and village.

    Returns (the page's rows in order, [(kind, village_code, issues)]).
    """
    if not checks:
        return [], []
    issues = union_all(*checks).cte("issue")
    order = (issues.c.rank, issues.c.village_code, issues.c.record_id)
    page = select(issues, func.row_number().over(order_by=order).label("position"))
    if after is not None:
        start = (
            literal(after[0], Integer),
            literal(after[1], issues.c.village_code.type),
            literal(after[2], issues.c.record_id.type),
        )
        page = page.where(tuple_(*order) > tuple_(*start))
    paged = page.order_by(*order).limit(limit).subquery("page")
    # Count rows: rank and village_code, the other columns null, the count in `position`.
    counts = select(
        *(c if c.key in ("rank", "village_code") else cast(null(), c.type) for c in issues.c),
        func.count().label("position"),
        literal(True).label("counted"),
    ).group_by(issues.c.rank, issues.c.village_code)
    if session.get_bind().dialect.name == "postgresql":
        # The statement's cost estimate passes the JIT thresholds: compiling its hundreds of
        # expressions took seconds on a county, longer than running it. Off, this transaction.
        await session.execute(text("SET LOCAL jit = off"))
    rows = (
        await session.execute(union_all(select(paged, literal(False).label("counted")), counts))
    ).all()
    page_rows = sorted((r for r in rows if not r.counted), key=lambda r: int(r.position))
    tallies = [(KIND_BY_RANK[r.rank], r.village_code, int(r.position)) for r in rows if r.counted]
    return page_rows, tallies


async def list_issues(
    session: AsyncSession,
    *,
    principal: Principal,
    region: str | None,
    kinds: Iterable[IssueKind],
    page: PageParams,
    today: date,
) -> QualityIssuePage:
    """Issues of the requested kinds (default all) in the caller's villages under `region`,
    by (kind, village_code, record_id), with counts per kind and per village over all pages."""
    scope = _scope(principal, region, today=today)
    after = _after(page.cursor)
    wanted = sorted(set(kinds) or set(IssueKind), key=KIND_ORDER.__getitem__)
    checks = [SQL_CHECKS[kind](scope) for kind in wanted if kind in SQL_CHECKS]

    # One more than the page, to know whether another page follows.
    rows, tallies = await _sql_issues(session, checks, after=after, limit=page.limit + 1)
    duplicates = [r.record_id for r in rows if r.rank == KIND_ORDER[IssueKind.id_number_duplicate]]
    holders = await _holders(session, duplicates)
    candidates = [
        from_row(
            row,
            kind=KIND_BY_RANK[row.rank],
            holders=holders[row.record_id],
            principal=principal,
            today=today,
        )
        for row in rows
    ]
    by_kind: Counter[IssueKind] = Counter()
    by_village: Counter[str] = Counter()
    for kind, village_code, n in tallies:
        by_kind[kind] += n
        by_village[village_code] += n

    if IssueKind.visit_far_from_village in wanted:
        far = await positions.visit_far_from_village(session, scope)
        for found in far:
            by_kind[found.kind] += 1
            by_village[found.village_code] += 1
        # The last kind: its issues follow those of the SQL kinds, in Python's order of
        # (village_code, record_id), the cursor compared the same way.
        candidates += sorted((f for f in far if after is None or _key(f) > after), key=_key)

    items = candidates[: page.limit]
    next_cursor = None
    if len(candidates) > page.limit:
        last = items[-1]
        next_cursor = encode_cursor([last.kind.value, last.village_code, last.record_id])
    return QualityIssuePage(
        items=items,
        next_cursor=next_cursor,
        counts=IssueCounts(
            by_kind={kind: by_kind[kind] for kind in wanted},
            by_village=dict(sorted(by_village.items())),
        ),
    )
