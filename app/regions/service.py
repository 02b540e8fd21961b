"""Regions: reading within the caller's reach, creating, and importing a county's divisions."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.errors import Forbidden, InvalidInput
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.regions import codes
from app.regions.errors import RegionExists, RegionNotFound
from app.regions.models import Region
from app.regions.schemas import RegionCreate


def _visible(principal: Principal) -> SelectOfScalar[Region]:
    return select(Region).where(principal.visible_regions(Region.code))


async def list_regions(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    parent: str | None = None,
    level: int | None = None,
) -> tuple[list[Region], str | None]:
    """Regions the caller may see, by code, optionally one parent's children or one level."""
    stmt = _visible(principal)
    if parent is not None:
        stmt = stmt.where(Region.parent_code == parent)
    if level is not None:
        stmt = stmt.where(Region.level == level)
    return await paginate(session, stmt, keys=[col(Region.code)], page=page)


async def get_region(session: AsyncSession, *, principal: Principal, code: str) -> Region:
    """One region, or RegionNotFound when it does not exist or lies outside the caller's reach."""
    region = await session.scalar(_visible(principal).where(Region.code == code))
    if region is None:
        raise RegionNotFound(
            Text("region {code} does not exist or is not visible to you", code=code)
        )
    return region


def _possible_parents(code: str) -> list[str]:
    """Divisions a region may hang under, nearest last; a natural village only under its village."""
    above = codes.ancestors_of(code)
    return above[-1:] if codes.level_of(code) is codes.Level.natural_village else above


def _nearest_parent(code: str, known: Callable[[str], bool]) -> str | None:
    for candidate in reversed(_possible_parents(code)):
        if known(candidate):
            return candidate
    return None


def _check_parent(code: str, parent_code: str, *, field: str) -> None:
    if parent_code not in _possible_parents(code):
        raise InvalidInput.field(
            field,
            Text(
                "{parent_code} is not a division above {code}", parent_code=parent_code, code=code
            ),
        )


async def create_region(
    session: AsyncSession, *, principal: Principal, data: RegionCreate
) -> Region:
    """A county admin adds a division inside their county (a new village, a natural village)."""
    if not principal.covers(data.code) or data.code in principal.region_codes:
        raise Forbidden(Text("{code} does not lie inside your county", code=data.code))
    if await session.get(Region, data.code) is not None:
        raise RegionExists(Text("region {code} already exists", code=data.code))
    parent_code = data.parent_code
    if parent_code is not None:
        _check_parent(data.code, parent_code, field="body.parent_code")
        if await session.get(Region, parent_code) is None:
            raise InvalidInput.field(
                "body.parent_code",
                Text("region {parent_code} does not exist", parent_code=parent_code),
            )
    else:
        existing = set(
            (
                await session.scalars(
                    select(Region.code).where(col(Region.code).in_(codes.ancestors_of(data.code)))
                )
            ).all()
        )
        parent_code = _nearest_parent(data.code, existing.__contains__)
        if parent_code is None:
            raise InvalidInput.field(
                "body.parent_code", Text("no division above this code exists yet")
            )
    region = Region(
        code=data.code,
        name=data.name,
        parent_code=parent_code,
        level=int(codes.level_of(data.code)),
        rural_population=data.rural_population,
    )
    session.add(region)
    await session.flush()
    return region


# --- import from CSV -------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    code: str
    name: str
    parent_code: str | None
    rural_population: int | None
    level: int


def parse_regions_csv(text: str, report: ImportReport) -> list[_Row]:
    """Rows of `code,name,parent_code,rural_population`; problems go to report.errors by line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    expected = {"code", "name", "parent_code", "rural_population"}
    if reader.fieldnames is None or not expected <= {f.strip() for f in reader.fieldnames}:
        report.errors.append(f"header must name the columns {', '.join(sorted(expected))}")
        return []
    rows: list[_Row] = []
    seen: set[str] = set()
    for raw in reader:
        # The physical line: DictReader skips blank lines, so counting records would drift.
        line = reader.line_num
        if None in raw:
            report.errors.append(f"line {line}: more columns than the header names")
            continue
        rec = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        code, name = rec["code"], rec["name"]
        try:
            level = int(codes.level_of(code))
        except codes.InvalidCode as exc:
            report.errors.append(f"line {line}: code: {exc}")
            continue
        if not name or len(name) > 100:
            report.errors.append(f"line {line}: name: 1 to 100 characters")
            continue
        if code in seen:
            report.errors.append(f"line {line}: code {code} appears twice")
            continue
        seen.add(code)
        population: int | None = None
        if rec["rural_population"]:
            if not (rec["rural_population"].isascii() and rec["rural_population"].isdigit()):
                report.errors.append(f"line {line}: rural_population: a whole number")
                continue
            population = int(rec["rural_population"])
        parent = rec["parent_code"] or None
        if parent is not None and parent not in _possible_parents(code):
            report.errors.append(
                f"line {line}: parent_code: {parent} is not a division above {code}"
            )
            continue
        rows.append(_Row(line, code, name, parent, population, level))
    return rows


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def import_regions(
    session: AsyncSession,
    *,
    text: str,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Create or update the divisions of a CSV file; with any error, nothing is written."""
    report = ImportReport()
    rows = parse_regions_csv(text, report)
    if report.errors:
        return report
    rows.sort(key=lambda r: (r.level, r.code))  # parents before children
    existing: dict[str, Region] = {}
    all_codes = [r.code for r in rows]
    all_codes += sorted({a for r in rows for a in codes.ancestors_of(r.code)} - set(all_codes))
    for chunk in _chunks(all_codes):
        found = await session.scalars(select(Region).where(col(Region.code).in_(chunk)))
        existing.update((region.code, region) for region in found)
    in_file = {r.code for r in rows}
    # Changes are collected and applied only when the whole file is valid, so that an error
    # leaves nothing pending in the caller's session either.
    new: list[Region] = []
    changed: list[tuple[Region, _Row, str | None]] = []
    for done, row in enumerate(rows, start=1):
        parent = row.parent_code
        if parent is None:
            parent = _nearest_parent(row.code, lambda c: c in in_file or c in existing)
            if parent is None and row.level > codes.Level.county:
                report.errors.append(f"line {row.line}: parent_code: no division above {row.code}")
        elif parent not in in_file and parent not in existing:
            report.errors.append(
                f"line {row.line}: parent_code: {parent} is neither in the file nor known"
            )
        region = existing.get(row.code)
        if region is None:
            new.append(
                Region(
                    code=row.code,
                    name=row.name,
                    parent_code=parent,
                    level=row.level,
                    rural_population=row.rural_population,
                )
            )
            report.created += 1
        elif (region.name, region.rural_population, region.parent_code) != (
            row.name,
            row.rural_population,
            parent,
        ):
            changed.append((region, row, parent))
            report.updated += 1
        else:
            report.unchanged += 1
        if progress is not None and (done % 200 == 0 or done == len(rows)):
            progress(done, len(rows))
    if report.errors:
        return report
    session.add_all(new)
    for stored, row, parent in changed:
        stored.name, stored.rural_population, stored.parent_code = (
            row.name,
            row.rural_population,
            parent,
        )
        stored.updated_at = utcnow()
    await session.flush()
    return report
