"""What the checks look at: the households in scope, and their members' counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from sqlalchemy import CTE, ColumnElement, and_, case, func, select, true
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.households.models import Household, Member
from app.households.vocabulary import Health, Relation


def current(member: Any = Member) -> ColumnElement[bool]:
    """A member still in the household (not removed)."""
    return col(member.removed_at).is_(None)


@dataclass(frozen=True)
class Scope:
    """The households checked (conditions on Household: the caller's regions, the filter's)."""

    households: Sequence[ColumnElement[bool]]
    today: date  # for birth dates in the future

    @cached_property
    def household(self) -> type[Household]:
        """The households in scope, as a CTE the checks join instead of the table: PostgreSQL
        evaluates the conditions (a LIKE on the village code) once per statement."""
        scoped = (
            select(Household)
            .where(*self.households)
            .cte("scoped_household")
            # SQLite, not knowing the size of a materialized CTE, builds Bloom filters by
            # scanning whole tables (0.5 s a branch): there the CTE is inlined in each check.
            .prefix_with("NOT MATERIALIZED", dialect="sqlite")
        )
        return aliased(Household, scoped)

    @cached_property
    def member_stats(self) -> CTE:
        """Per household in scope, counts over its current members: one GROUP BY pass shared
        by head_not_member, size_mismatch and cause_contradicts_members."""
        h = self.household
        is_head = col(Member.relation) == Relation.head

        def number(condition: ColumnElement[bool]) -> Any:
            return func.sum(case((condition, 1), else_=0))

        return (
            select(
                col(h.id).label("household_id"),
                func.count().label("members"),
                number(is_head).label("heads"),
                number(and_(is_head, col(Member.name) == h.head_name)).label("named"),
                func.min(case((is_head, col(Member.name)))).label("head_name"),
                number(col(Member.health) != Health.healthy).label("unwell"),
                number(col(Member.health) == Health.disabled).label("disabled"),
                number(col(Member.in_school) == true()).label("in_school"),
            )
            .select_from(h)  # the households drive: a village reads its members only
            .join(Member, col(Member.household_id) == h.id)
            .where(current())
            .group_by(col(h.id))
            .cte("member_stats")
        )
