"""The checks that SQL answers on its own: one SELECT per kind, all of the same shape.

Every check selects the columns of `_columns` (the kind's rank, the household's village, the
record, its household, a few kind-specific values for the detail), so the service can UNION ALL
them, page the union by (rank, village_code, record_id) and count it by kind and village.
Each check yields at most one row per record. The checks read the households in scope and
their members' counts from the CTEs of `Scope`, shared by all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.core.base import UTCDateTime
from app.core.config import get_settings
from app.households.models import Household, Member
from app.households.vocabulary import Cause
from app.monitoring.models import MonitoringAlert
from app.monitoring.vocabulary import AlertKind, AlertOutcome
from app.quality import gb11643
from app.quality.scope import Scope, current
from app.quality.vocabulary import (
    KIND_ORDER,
    REMOTE_VISIT_MODES,
    IssueKind,
    IssueRecordType,
)
from app.records import schemas as records_schemas
from app.records.models import IncomeSnapshot, Visit

# Bits of cause_contradicts_members (n1): which cause has no member to support it.
CAUSE_BITS = {Cause.illness: 1, Cause.disability: 2, Cause.schooling: 4}
# Bits of income_implausible (n1).
INCOME_BITS = {
    "negative_net_income": 1,
    "per_capita_above_bound": 2,
    "negative_component": 4,
    "totals_mismatch": 8,
}


def _columns(
    kind: IssueKind,
    record_type: IssueRecordType,
    record_id: Any,
    h: type[Household],
    *,
    name: Any = None,
    text: Any = None,
    n1: Any = None,
    n2: Any = None,
    n3: Any = None,
    n4: Any = None,
    at: Any = None,
) -> list[Any]:
    """The shared column list; absent values are typed NULLs (PostgreSQL unions need types)."""

    def typed(value: Any, type_: Any) -> Any:
        return cast(null(), type_) if value is None else cast(value, type_)

    return [
        literal(KIND_ORDER[kind], Integer).label("rank"),
        col(h.village_code).label("village_code"),
        record_id.label("record_id"),
        col(h.id).label("household_id"),
        col(h.number).label("household_number"),
        literal(record_type.value, String).label("record_type"),
        typed(name, String).label("name"),
        typed(text, String).label("text"),
        typed(n1, BigInteger).label("n1"),
        typed(n2, BigInteger).label("n2"),
        typed(n3, BigInteger).label("n3"),
        typed(n4, BigInteger).label("n4"),
        (cast(null(), UTCDateTime) if at is None else at).label("at"),
    ]


def _of_current_members(stmt: Select[Any], scope: Scope) -> Select[Any]:
    """`stmt` over the current members of the households in scope."""
    h = scope.household
    return stmt.select_from(Member).join(h, col(h.id) == Member.household_id).where(current())


def id_number_missing(scope: Scope) -> Select[Any]:
    """A current member without an ID number (null or blank)."""
    stmt = select(
        *_columns(
            IssueKind.id_number_missing,
            IssueRecordType.member,
            col(Member.id),
            scope.household,
            name=col(Member.name),
        )
    )
    return _of_current_members(stmt, scope).where(
        or_(col(Member.id_number).is_(None), func.trim(col(Member.id_number)) == "")
    )


def id_number_invalid(scope: Scope) -> Select[Any]:
    """A current member's ID number that `id_numbers.normalize` would not return unchanged:
    wrong length or characters, no real birth date, a birth date in the future or before
    1880, a wrong check character, or a 15-digit (or otherwise unnormalized) form."""
    number = col(Member.id_number)
    stmt = select(
        *_columns(
            IssueKind.id_number_invalid,
            IssueRecordType.member,
            col(Member.id),
            scope.household,
            name=col(Member.name),
            text=number,
        )
    )
    return _of_current_members(stmt, scope).where(
        number.is_not(None),
        func.trim(number) != "",
        ~gb11643.valid_in_sql(number, today=scope.today),
    )


def id_number_duplicate(scope: Scope) -> Select[Any]:
    """A current member whose ID number (by its keyed hash) another current member also holds,
    in any household, in scope or not (the other holder is named only if the caller may see
    it). One probe of the hash index per member in scope."""
    other = aliased(Member)
    shared = exists(
        select(col(other.id)).where(
            col(other.id_number_hash) == Member.id_number_hash,
            col(other.id) != Member.id,
            current(other),
        )
    )
    stmt = select(
        *_columns(
            IssueKind.id_number_duplicate,
            IssueRecordType.member,
            col(Member.id),
            scope.household,
            name=col(Member.name),
            text=col(Member.id_number),
        )
    )
    return _of_current_members(stmt, scope).where(col(Member.id_number_hash).is_not(None), shared)


def head_not_member(scope: Scope) -> Select[Any]:
    """No current member is the head (relation head) under the household's head_name.

    Covers both a household without a head member and a head member named otherwise than
    head_name (the head changed on one side only).
    """
    h, stats = scope.household, scope.member_stats
    stmt = select(
        *_columns(
            IssueKind.head_not_member,
            IssueRecordType.household,
            col(h.id),
            h,
            name=col(h.head_name),
            text=stats.c.head_name,
            n1=func.coalesce(stats.c.heads, 0),
        )
    )
    return (
        stmt.select_from(h)
        .outerjoin(stats, stats.c.household_id == h.id)
        .where(func.coalesce(stats.c.named, 0) == 0)
    )


def size_mismatch(scope: Scope) -> Select[Any]:
    """The latest income snapshot's household_size differs from the current member count.

    Households have no size field of their own: the size of the record is its member list, and
    the latest snapshot (highest year, then latest recorded_at) is what income per head used.
    """
    h, stats = scope.household, scope.member_stats
    latest = (
        select(
            col(IncomeSnapshot.household_id),
            col(IncomeSnapshot.year),
            col(IncomeSnapshot.kind),
            col(IncomeSnapshot.household_size),
            func.row_number()
            .over(
                partition_by=col(IncomeSnapshot.household_id),
                order_by=(
                    col(IncomeSnapshot.year).desc(),
                    col(IncomeSnapshot.recorded_at).desc(),
                    col(IncomeSnapshot.id).desc(),
                ),
            )
            .label("rn"),
        )
        .join(h, col(h.id) == IncomeSnapshot.household_id)
        .subquery()
    )
    members = func.coalesce(stats.c.members, 0)
    stmt = select(
        *_columns(
            IssueKind.size_mismatch,
            IssueRecordType.household,
            col(h.id),
            h,
            text=latest.c.kind,
            n1=latest.c.household_size,
            n2=members,
            n4=latest.c.year,
        )
    )
    return (
        stmt.select_from(h)
        .join(latest, and_(latest.c.household_id == h.id, latest.c.rn == 1))
        .outerjoin(stats, stats.c.household_id == h.id)
        .where(latest.c.household_size != members)
    )


def _has_cause(h: type[Household], cause: Cause) -> ColumnElement[bool]:
    # other_causes is a JSON list of codes: its text holds "code" with the quotes.
    return or_(
        col(h.main_cause) == cause.value,
        cast(h.other_causes, Text).contains(f'"{cause.value}"', autoescape=True),
    )


def cause_contradicts_members(scope: Scope) -> Select[Any]:
    """因病 (main or other) with every current member healthy; 因残 with nobody disabled;
    因学 with nobody in school. n1 holds CAUSE_BITS of the causes contradicted."""
    h, stats = scope.household, scope.member_stats

    def nobody(count: Any) -> ColumnElement[bool]:
        return func.coalesce(count, 0) == 0

    contradicted = {
        Cause.illness: and_(_has_cause(h, Cause.illness), nobody(stats.c.unwell)),
        Cause.disability: and_(_has_cause(h, Cause.disability), nobody(stats.c.disabled)),
        Cause.schooling: and_(_has_cause(h, Cause.schooling), nobody(stats.c.in_school)),
    }
    bits = sum(
        (
            case((condition, CAUSE_BITS[cause]), else_=0)
            for cause, condition in contradicted.items()
        ),
        start=literal(0, Integer),
    )
    stmt = select(
        *_columns(
            IssueKind.cause_contradicts_members,
            IssueRecordType.household,
            col(h.id),
            h,
            text=col(h.main_cause),
            n1=bits,
        )
    )
    return (
        stmt.select_from(h)
        .outerjoin(stats, stats.c.household_id == h.id)
        .where(or_(*contradicted.values()))
    )


def cause_repeated(scope: Scope) -> Select[Any]:
    """The main cause appears again among the other causes."""
    h = scope.household
    escaped = func.replace(
        func.replace(func.replace(col(h.main_cause), "/", "//"), "%", "/%"), "_", "/_"
    )
    pattern = literal('%"', String) + escaped + literal('"%', String)
    stmt = select(
        *_columns(
            IssueKind.cause_repeated,
            IssueRecordType.household,
            col(h.id),
            h,
            text=col(h.main_cause),
        )
    )
    return stmt.select_from(h).where(cast(h.other_causes, Text).like(pattern, escape="/"))


def income_implausible(scope: Scope) -> Select[Any]:
    """An income snapshot with a negative net income, a per-capita income above the setting
    `quality_max_per_capita_yuan`, a negative component, or totals that do not add up from the
    components (a component larger than its total, per-capita ≠ net ÷ size).
    n1 holds INCOME_BITS."""
    h, s = scope.household, IncomeSnapshot
    components = {name: getattr(s, name) for name in records_schemas.COMPONENTS}
    transfers = [v for k, v in components.items() if k.startswith("transfer_")]
    gross = sum((v for k, v in components.items() if k != "business_expenses"), start=literal(0))
    rules = {
        "negative_net_income": col(s.net_income) < 0,
        "per_capita_above_bound": col(s.per_capita_income)
        > get_settings().quality_max_per_capita_yuan * 100,
        "negative_component": or_(*(v < 0 for v in components.values())),
        "totals_mismatch": or_(
            col(s.property_income) != col(s.property_dividend) + col(s.property_other),
            col(s.transfer_income) != sum(transfers, start=literal(0)),
            col(s.net_income) != gross - col(s.business_expenses),
            col(s.household_size) < 1,
            # per_capita is net ÷ size rounded to the fen: off by at most half a fen per head.
            func.abs(2 * (col(s.per_capita_income) * col(s.household_size) - col(s.net_income)))
            > col(s.household_size),
        ),
    }
    bits = sum(
        (case((rule, INCOME_BITS[name]), else_=0) for name, rule in rules.items()),
        start=literal(0, Integer),
    )
    stmt = select(
        *_columns(
            IssueKind.income_implausible,
            IssueRecordType.income_snapshot,
            col(s.id),
            h,
            text=col(s.kind),
            n1=bits,
            n2=col(s.net_income),
            n3=col(s.per_capita_income),
            n4=col(s.year),
        )
    )
    return stmt.select_from(s).join(h, col(h.id) == s.household_id).where(or_(*rules.values()))


def visit_without_photo(scope: Scope) -> Select[Any]:
    """An in-person visit (not by phone or video) without any photo."""
    h = scope.household
    stmt = select(
        *_columns(
            IssueKind.visit_without_photo,
            IssueRecordType.visit,
            col(Visit.id),
            h,
            text=col(Visit.mode),
            at=col(Visit.visited_at),
        )
    )
    return (
        stmt.select_from(Visit)
        .join(h, col(h.id) == Visit.household_id)
        .where(
            col(Visit.mode).not_in(REMOTE_VISIT_MODES),
            func.coalesce(func.json_array_length(Visit.photos), 0) == 0,
        )
    )


def deceased_member_listed(scope: Scope) -> Select[Any]:
    """A current member for whom a department reported a death (a `death` alert) that a cadre
    did not find wrong (verified `no_risk`): the member should be removed with reason death.
    text holds the earliest reported date (YYYY-MM-DD), n1 the number of such alerts."""
    deaths = (
        select(
            col(MonitoringAlert.member_id).label("member_id"),
            func.min(col(MonitoringAlert.occurred_on)).label("first_on"),
            func.count().label("alerts"),
        )
        .where(
            col(MonitoringAlert.kind) == AlertKind.death.value,
            col(MonitoringAlert.outcome).is_distinct_from(AlertOutcome.no_risk.value),
        )
        .group_by(col(MonitoringAlert.member_id))
        .subquery("death")
    )
    stmt = select(
        *_columns(
            IssueKind.deceased_member_listed,
            IssueRecordType.member,
            col(Member.id),
            scope.household,
            name=col(Member.name),
            text=deaths.c.first_on,
            n1=deaths.c.alerts,
        )
    )
    return _of_current_members(stmt, scope).join(deaths, deaths.c.member_id == Member.id)


SQL_CHECKS: dict[IssueKind, Callable[[Scope], Select[Any]]] = {
    IssueKind.id_number_missing: id_number_missing,
    IssueKind.id_number_invalid: id_number_invalid,
    IssueKind.id_number_duplicate: id_number_duplicate,
    IssueKind.head_not_member: head_not_member,
    IssueKind.size_mismatch: size_mismatch,
    IssueKind.cause_contradicts_members: cause_contradicts_members,
    IssueKind.cause_repeated: cause_repeated,
    IssueKind.income_implausible: income_implausible,
    IssueKind.visit_without_photo: visit_without_photo,
    IssueKind.deceased_member_listed: deceased_member_listed,
}
