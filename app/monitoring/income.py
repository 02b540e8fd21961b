"""The income judged for monitoring: net income without the items a region leaves out.

Which items a region leaves out is data (`IncomeExclusion`), by scope like the thresholds:
"national" or a region code, and the most specific scope that has any rows decides the whole
set (a county's rows replace the national set, they do not add to it). Default: none.

Python form (one household: `excluded_items`, `monitoring_per_capita`) and SQL form (a region:
`ExclusionSets`, `monitoring_per_capita_sql`) side by side; `tests/monitoring/test_rules_agree.py`
checks that they agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, case, literal, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import within_regions
from app.core.money import divide_half_up
from app.monitoring.models import IncomeExclusion
from app.records.schemas import INCOME_ITEMS
from app.regions import codes
from app.thresholds.service import NATIONAL, scopes_of

EXCLUDABLE_ITEMS = INCOME_ITEMS
"""The items a region may leave out: every component that adds to net income."""


def _decide(rows: Sequence[tuple[str, str]], scopes: Sequence[str]) -> frozenset[str]:
    """The set of the most specific scope of `scopes` that has rows (only known items)."""
    by_scope: dict[str, set[str]] = {}
    for scope, item in rows:
        by_scope.setdefault(scope, set()).add(item)
    for scope in reversed(scopes):
        if scope in by_scope:
            return frozenset(by_scope[scope] & set(EXCLUDABLE_ITEMS))
    return frozenset()


async def excluded_items(session: AsyncSession, *, region_code: str) -> frozenset[str]:
    """The income items left out of the monitoring income of a region's households."""
    scopes = scopes_of(region_code)
    rows = (
        await session.execute(
            select(col(IncomeExclusion.scope), col(IncomeExclusion.item)).where(
                col(IncomeExclusion.scope).in_(scopes)
            )
        )
    ).all()
    return _decide([(row[0], row[1]) for row in rows], scopes)


def monitoring_net(snapshot: Any, excluded: frozenset[str]) -> int:
    """Net income (fen) without the excluded items."""
    return int(snapshot.net_income) - sum(int(getattr(snapshot, item)) for item in excluded)


def monitoring_per_capita(snapshot: Any, excluded: frozenset[str]) -> int:
    """Per-capita monitoring income (fen), rounded half up like `per_capita_income`."""
    return divide_half_up(monitoring_net(snapshot, excluded), snapshot.household_size)


# --- the SQL form ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExclusionSets:
    """The excluded items of every village of a region, as a few keys.

    Most villages take the set of the region's own chain (national … region): key `code`. A
    division inside the region with rows of its own (`special`) gives its villages its set; a
    village takes the most specific special division it lies in (as the thresholds' steps).
    """

    code: str
    special: tuple[str, ...]  # deepest first
    sets: Mapping[str, frozenset[str]]  # by key

    def key(self, village: Any) -> ColumnElement[str]:
        """SQL: the key of a village code column."""
        if not self.special:
            return literal(self.code, String)
        return case(
            *[(within_regions([s], village), literal(s, String)) for s in self.special],
            else_=literal(self.code, String),
        )

    def excluded_sql(self, key: Any, model: Any) -> ColumnElement[int]:
        """SQL: the sum (fen) of the excluded items of a snapshot row, given its village's key."""
        total: ColumnElement[int] = literal(0)
        for item in EXCLUDABLE_ITEMS:
            keys = sorted(k for k, items in self.sets.items() if item in items)
            if not keys:
                continue
            column = getattr(model, item)
            total = total + case((key.in_(keys), column), else_=0)
        return total


async def exclusion_sets(session: AsyncSession, *, code: str) -> ExclusionSets:
    """The excluded items of each village of region `code`, by key (see `ExclusionSets`)."""
    scope = col(IncomeExclusion.scope)
    in_chain = scope.in_([NATIONAL, *codes.ancestors_of(code)])
    found = await session.execute(
        select(scope, col(IncomeExclusion.item)).where(or_(in_chain, within_regions([code], scope)))
    )
    rows = [(row[0], row[1]) for row in found.all()]
    special = sorted(
        {s for s, _ in rows if s not in (NATIONAL, code) and codes.is_within(s, code)},
        key=lambda s: (-codes.level_of(s), s),
    )
    sets = {key: _decide(rows, scopes_of(key)) for key in [code, *special]}
    return ExclusionSets(code, tuple(special), sets)


def divide_half_up_sql(numerator: Any, divisor: Any) -> ColumnElement[int]:
    """SQL of `divide_half_up` for a positive integer divisor: integer arithmetic only."""
    up = (2 * numerator + divisor) // (2 * divisor)
    down = (2 * (-numerator) + divisor) // (2 * divisor)
    return case((numerator >= 0, up), else_=-down)


def monitoring_per_capita_sql(sets: ExclusionSets, key: Any, model: Any) -> ColumnElement[int]:
    """SQL of `monitoring_per_capita` for a snapshot row whose village has key `key`."""
    net = col(model.net_income) - sets.excluded_sql(key, model)
    return divide_half_up_sql(net, col(model.household_size))
