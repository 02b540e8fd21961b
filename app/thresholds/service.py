"""Which poverty line and monitoring threshold apply to a year in a region.

For each of the two figures separately: the row of the latest year not after the asked year
wins; between rows of that same year, the most specific scope wins (village over town over
county … over national). So a county's own monitoring threshold for 2024 overrides the national
one, and a year without any row carries the latest earlier figure forward (e.g. 2024 → the 2021
threshold), saying from which year (`monitoring_threshold_year`).

**There is no poverty line after 2020** (DOMAIN.md): from 2021 a household is judged against the
monitoring threshold. The line of 2020 is never carried past 2020, and a row's line for a later
year (a county may have typed one) is ignored: for a year after 2020 the line is always None.

`effective_thresholds` answers for one region (Python); `threshold_steps` and `steps_cte` give the
same figures for every village of a region as a small SQL table (a step function by year).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    case,
    cast,
    false,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.principal import Principal, within_regions
from app.core.base import utcnow
from app.core.errors import Forbidden, InvalidInput
from app.core.i18n import Text
from app.regions import codes
from app.regions.models import Region
from app.thresholds.models import PovertyThreshold

NATIONAL = "national"
LAST_POVERTY_LINE_YEAR = 2020
"""The last year with a poverty line: a national policy fact, not a figure a county sets."""


@dataclass(frozen=True)
class Effective:
    poverty_line: int | None  # fen; always None after LAST_POVERTY_LINE_YEAR
    monitoring_threshold: int | None  # fen
    # The year of the row each figure comes from (earlier than the asked year when carried).
    poverty_line_year: int | None = None
    monitoring_threshold_year: int | None = None


def scopes_of(region_code: str) -> list[str]:
    """National first, then each division down to the region itself: least to most specific."""
    return [NATIONAL, *codes.ancestors_of(region_code), region_code]


async def effective_thresholds(
    session: AsyncSession, *, region_code: str, years: Iterable[int]
) -> dict[int, Effective]:
    """The line and threshold in force in each of `years` in a region, and their rows' years."""
    wanted = sorted(set(years))
    if not wanted:
        return {}
    scopes = scopes_of(region_code)
    rows = (
        await session.scalars(
            select(PovertyThreshold).where(
                col(PovertyThreshold.scope).in_(scopes), col(PovertyThreshold.year) <= wanted[-1]
            )
        )
    ).all()
    rank = {scope: i for i, scope in enumerate(scopes)}
    ordered = sorted(rows, key=lambda r: (r.year, rank[r.scope]))  # best candidate last
    out: dict[int, Effective] = {}
    for year in wanted:
        line = threshold = line_year = threshold_year = None
        for row in ordered:
            if row.year > year:
                break
            if row.poverty_line is not None and row.year <= LAST_POVERTY_LINE_YEAR:
                line, line_year = row.poverty_line, row.year
            if row.monitoring_threshold is not None:
                threshold, threshold_year = row.monitoring_threshold, row.year
        if year > LAST_POVERTY_LINE_YEAR:
            line = line_year = None
        out[year] = Effective(line, threshold, line_year, threshold_year)
    return out


# --- the SQL form: the figures of every village of a region, by year ---------------------------


@dataclass(frozen=True)
class Step:
    """Figures in force for `key`'s villages from `from_year` up to `to_year` (excluded)."""

    key: str
    from_year: int
    to_year: int | None
    poverty_line: int | None
    monitoring_threshold: int | None
    monitoring_threshold_year: int | None

    @property
    def figures(self) -> tuple[int | None, int | None, int | None]:
        return self.poverty_line, self.monitoring_threshold, self.monitoring_threshold_year


@dataclass(frozen=True)
class Steps:
    """The step function of a region: `key(village)` names the villages' figures in `steps`."""

    code: str
    special: tuple[str, ...]  # deepest first
    steps: tuple[Step, ...]

    def key(self, village: Any) -> ColumnElement[str]:
        """SQL: the key of a village code column."""
        if not self.special:
            return literal(self.code, String)
        return case(
            *[(within_regions([s], village), literal(s, String)) for s in self.special],
            else_=literal(self.code, String),
        )


async def threshold_steps(session: AsyncSession, *, code: str) -> Steps:
    """Which figures apply to each village of the region, by year, as a step function.

    Most villages share the figures of the region's own chain (national … county … region);
    a division inside the region with rows of its own (`special`) gives its villages theirs. A
    village takes the figures of the most specific special division it lies in, else of the
    region: `effective_thresholds` of that division gives the same answer as of the village,
    since nothing between them has rows. The figures only change in years that have rows, and
    after the last year of the poverty line.
    """
    scope = col(PovertyThreshold.scope)
    rows = (
        await session.execute(
            select(scope, col(PovertyThreshold.year))
            .where(
                or_(
                    scope.in_([NATIONAL, *codes.ancestors_of(code)]),
                    within_regions([code], scope),
                )
            )
            .distinct()
        )
    ).all()
    years = sorted({year for _, year in rows})
    if years and years[0] <= LAST_POVERTY_LINE_YEAR:
        years = sorted({*years, LAST_POVERTY_LINE_YEAR + 1})  # where a line stops
    # Deepest first: a village's key is the first special division that contains it.
    special = sorted(
        {s for s, _ in rows if s not in (NATIONAL, code) and codes.is_within(s, code)},
        key=lambda s: (-codes.level_of(s), s),
    )
    steps: list[Step] = []
    for key in [code, *special]:
        effective = await effective_thresholds(session, region_code=key, years=years)
        for i, year in enumerate(years):
            following = years[i + 1] if i + 1 < len(years) else None
            e = effective[year]
            figures = (e.poverty_line, e.monitoring_threshold, e.monitoring_threshold_year)
            last = steps[-1] if steps else None
            if last is not None and last.key == key and last.figures == figures:
                steps[-1] = Step(key, last.from_year, following, *figures)  # the same: extend
            else:
                steps.append(Step(key, year, following, *figures))
    return Steps(code, tuple(special), tuple(steps))


def steps_cte(steps: Sequence[Step], name: str = "thresholds") -> CTE:
    """The step function as a small table (a UNION ALL: SQLite has no VALUES with names).

    Columns: key, from_year, to_year, poverty_line, monitoring_threshold,
    monitoring_threshold_year. Join it on the key and `from_year <= year < to_year` (to_year
    null: open).
    """

    def row(values: tuple[Any, ...]) -> Select[str, int, int, int, int, int]:
        key, from_year, to_year, line, threshold, threshold_year = values
        return select(
            cast(literal(key, String), String).label("key"),
            cast(literal(from_year, Integer), Integer).label("from_year"),
            cast(literal(to_year, Integer), Integer).label("to_year"),
            cast(literal(line, BigInteger), BigInteger).label("poverty_line"),
            cast(literal(threshold, BigInteger), BigInteger).label("monitoring_threshold"),
            cast(literal(threshold_year, Integer), Integer).label("monitoring_threshold_year"),
        )

    if not steps:  # no thresholds at all: an empty table of the same columns
        return row((None,) * 6).where(false()).cte(name)
    selects = [row(astuple(step)) for step in steps]
    if len(selects) == 1:
        return selects[0].cte(name)
    table: CompoundSelect[str, int, int, int, int, int] = union_all(*selects)
    return table.cte(name)


def in_step(th: Any, *, key: Any, year: Any) -> ColumnElement[bool]:
    """SQL: the join condition of a row of `steps_cte` for a village key and a year."""
    return (
        (th.c.key == key)
        & (year >= th.c.from_year)
        & or_(th.c.to_year.is_(None), year < th.c.to_year)
    )


async def list_thresholds(session: AsyncSession, *, principal: Principal) -> list[PovertyThreshold]:
    """National rows and the rows of the caller's regions and the divisions above them."""
    scopes = {NATIONAL}
    for own in principal.region_codes:
        scopes.update(scopes_of(own))
    stmt = select(PovertyThreshold).where(
        (col(PovertyThreshold.scope).in_(sorted(scopes)))
        | principal.within(col(PovertyThreshold.scope))
    )
    stmt = stmt.order_by(col(PovertyThreshold.scope), col(PovertyThreshold.year))
    return list((await session.scalars(stmt)).all())


async def set_threshold(
    session: AsyncSession,
    *,
    principal: Principal,
    scope: str,
    year: int,
    poverty_line: int | None,
    monitoring_threshold: int | None,
    note: str | None,
) -> tuple[PovertyThreshold, bool]:
    """A county admin sets their county's (or a division's inside it) own figures for a year."""
    if scope == NATIONAL or not principal.covers(scope):
        raise Forbidden(
            Text(
                "{scope} is not inside your county; national figures are set by migration",
                scope=scope,
            )
        )
    if await session.get(Region, scope) is None:
        raise InvalidInput.field("path.scope", Text("region {scope} does not exist", scope=scope))
    if poverty_line is None and monitoring_threshold is None:
        raise InvalidInput.field("body", Text("give poverty_line, monitoring_threshold or both"))
    if poverty_line is not None and year > LAST_POVERTY_LINE_YEAR:
        raise InvalidInput.field(
            "body.poverty_line",
            Text(
                "there is no poverty line after {last_year}: from "
                "{value} households are judged against the monitoring threshold",
                last_year=LAST_POVERTY_LINE_YEAR,
                value=LAST_POVERTY_LINE_YEAR + 1,
            ),
            type="no_line_after_2020",
        )
    row = await session.get(PovertyThreshold, (scope, year))
    created = row is None
    if row is None:
        row = PovertyThreshold(scope=scope, year=year)
        session.add(row)
    row.poverty_line = poverty_line
    row.monitoring_threshold = monitoring_threshold
    row.note = note
    row.updated_at = utcnow()
    await session.flush()
    return row, created
