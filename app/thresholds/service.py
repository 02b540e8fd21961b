"""Which poverty line and monitoring threshold apply to a year in a region.

For each of the two figures separately: the row of the latest year not after the asked year
wins; between rows of that same year, the most specific scope wins (village over town over
county … over national). So a county's own line for 2024 overrides the national one, and a year
without any row carries the latest earlier figure forward (e.g. 2024 → the 2020 line).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.errors import Forbidden, InvalidInput
from app.regions import codes
from app.regions.models import Region
from app.thresholds.models import PovertyThreshold

NATIONAL = "national"


@dataclass(frozen=True)
class Effective:
    poverty_line: int | None  # fen
    monitoring_threshold: int | None  # fen


def _scopes(region_code: str) -> list[str]:
    """National first, then each division down to the region itself: least to most specific."""
    return [NATIONAL, *codes.ancestors_of(region_code), region_code]


async def effective_thresholds(
    session: AsyncSession, *, region_code: str, years: Iterable[int]
) -> dict[int, Effective]:
    wanted = sorted(set(years))
    if not wanted:
        return {}
    scopes = _scopes(region_code)
    rows = (
        await session.scalars(
            select(PovertyThreshold).where(
                col(PovertyThreshold.scope).in_(scopes), PovertyThreshold.year <= wanted[-1]
            )
        )
    ).all()
    rank = {scope: i for i, scope in enumerate(scopes)}
    ordered = sorted(rows, key=lambda r: (r.year, rank[r.scope]))  # best candidate last
    out: dict[int, Effective] = {}
    for year in wanted:
        line = threshold = None
        for row in ordered:
            if row.year > year:
                break
            if row.poverty_line is not None:
                line = row.poverty_line
            if row.monitoring_threshold is not None:
                threshold = row.monitoring_threshold
        out[year] = Effective(line, threshold)
    return out


async def list_thresholds(session: AsyncSession, *, principal: Principal) -> list[PovertyThreshold]:
    """National rows and the rows of the caller's regions and the divisions above them."""
    scopes = {NATIONAL}
    for own in principal.region_codes:
        scopes.update(_scopes(own))
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
        raise Forbidden(f"{scope} is not inside your county; national figures are set by migration")
    if await session.get(Region, scope) is None:
        raise InvalidInput.field("path.scope", f"region {scope} does not exist")
    if poverty_line is None and monitoring_threshold is None:
        raise InvalidInput.field("body", "give poverty_line, monitoring_threshold or both")
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
