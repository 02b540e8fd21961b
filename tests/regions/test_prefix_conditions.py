"""Region scopes are code ranges: exactly the rows of the region, found through a plain index."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import ColumnElement, false, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.principal import within_regions
from app.households.models import Household
from app.regions import codes
from app.regions.models import Region

COUNTY = "430621000000"
TOWN = "430621101000"
VILLAGE = "430621101201"
# Neighbours just below and above each level's range, natural villages, a county and a town
# whose prefix ends in 9 (the range ends at ':'), and strings no valid code takes but that
# a prefix test must still get right (a village code as a proper prefix of a longer one).
STORED = [
    "430620101201",
    "430620999999",
    COUNTY,
    "430621100999",
    TOWN,
    "430621101200",
    VILLAGE,
    f"{VILLAGE}-01",
    f"{VILLAGE}-0A",
    f"{VILLAGE}-",
    f"{VILLAGE},",
    f"{VILLAGE}.",
    f"{VILLAGE}0",
    "430621101202",
    "430621101202-01",
    "430621102000",
    "430621102201",
    "430621109000",
    "430621109201",
    "430621110201",
    "430622000000",
    "430622101201",
    "430629000000",
    "430629101201",
    "430630101201",
    "430700000000",
]


def _expected(scope: list[str]) -> set[str]:
    """The rows of `scope` by the rule, in Python: a village and its `-` children, else the
    codes that start with the region's prefix."""
    out = set()
    for own in scope:
        village = codes.level_of(own) >= codes.Level.village
        for code in STORED:
            if (
                (code == own or code.startswith(own + "-"))
                if village
                else code.startswith(codes.prefix_of(own))
            ):
                out.add(code)
    return out


def test_prefix_range() -> None:
    assert codes.prefix_range("430621") == ("430621", "430622")
    assert codes.prefix_range("430629") == ("430629", "43062:")
    assert codes.prefix_range(f"{VILLAGE}-") == (f"{VILLAGE}-", f"{VILLAGE}.")
    with pytest.raises(ValueError, match="no range"):
        codes.prefix_range("")


@pytest.mark.parametrize(
    "scope",
    [
        [COUNTY],
        [TOWN],
        [VILLAGE],
        [f"{VILLAGE}-01"],
        ["430629000000"],  # prefix ending in 9
        ["430621109000"],
        ["430621102201", "430622000000"],
        ["430600000000"],  # a city
        ["430000000000"],  # a province
        [],
    ],
)
async def test_within_regions_selects_exactly_the_region(
    session: AsyncSession, scope: list[str]
) -> None:
    # Raw codes, no parents: the odd strings are no valid codes, the table takes them anyway.
    session.add_all(Region(code=code, name=code, level=0) for code in STORED)
    await session.flush()
    code = col(Region.code)

    found = set(await session.scalars(select(code).where(within_regions(scope, code))))

    assert found == _expected(scope)
    # The same rows as the LIKE conditions the ranges replace.
    assert found == set(await session.scalars(select(code).where(_as_like(scope, code))))


def _as_like(scope: list[str], column: Any) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    for own in scope:
        if codes.level_of(own) >= codes.Level.village:
            conditions += [column == own, column.startswith(own + "-")]
        else:
            conditions.append(column.startswith(codes.prefix_of(own)))
    return or_(*conditions) if conditions else false()


async def _plan(session: AsyncSession, condition: ColumnElement[bool]) -> str:
    conn = await session.connection()
    stmt = select(col(Household.id)).where(condition).compile(dialect=conn.dialect)
    params = tuple(stmt.params[name] for name in stmt.positiontup or ())
    if conn.dialect.name == "sqlite":
        rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {stmt}", params)
        return "\n".join(row[-1] for row in rows)
    # An empty test table is read faster whole: ask whether the index can serve at all.
    await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(row[0] for row in await conn.exec_driver_sql(f"EXPLAIN {stmt}", params))


async def test_a_county_is_an_index_range(session: AsyncSession) -> None:
    plan = await _plan(session, within_regions([COUNTY], col(Household.village_code)))

    if session.bind.dialect.name == "sqlite":
        assert (
            "SEARCH household USING INDEX ix_household_village_code "
            "(village_code>? AND village_code<?)" in plan
        ), plan
    else:
        assert "ix_household_village_code" in plan, plan
        assert (
            "Index Cond: (((village_code)::text >= '430621'::text) "
            "AND ((village_code)::text < '430622'::text))" in plan
        ), plan


async def test_a_village_is_two_index_lookups(session: AsyncSession) -> None:
    plan = await _plan(session, within_regions([VILLAGE], col(Household.village_code)))

    if session.bind.dialect.name == "sqlite":
        assert "SCAN household" not in plan, plan
        assert "USING INDEX ix_household_village_code (village_code=?)" in plan, plan
        assert "USING INDEX ix_household_village_code (village_code>? AND village_code<?)" in plan
    else:
        assert "Seq Scan" not in plan, plan
        assert f"Index Cond: ((village_code)::text = '{VILLAGE}'::text)" in plan, plan
        assert f"((village_code)::text >= '{VILLAGE}-'::text)" in plan, plan


async def test_region_codes_compare_bytewise(session: AsyncSession) -> None:
    """Region codes compare bytewise: a natural village sorts inside its village's range
    ('-' < '0'), which a linguistic collation (ignoring '-') would not do. On PostgreSQL by
    COLLATE "C", so a plain index serves LIKE 'prefix%' too, and ranges in generic plans
    (prepared statements); on SQLite by its BINARY default."""
    conn = await session.connection()
    if session.bind.dialect.name != "postgresql":
        # SQLite's default collation, BINARY, is bytewise: nothing to declare.
        assert await session.scalar(text(f"SELECT '{VILLAGE}-01' < '{VILLAGE}.'")) == 1
        assert await session.scalar(text(f"SELECT '{VILLAGE}-01' < '{VILLAGE}0'")) == 1
        return
    await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")

    like = "\n".join(
        row[0]
        for row in await conn.exec_driver_sql(
            "EXPLAIN SELECT id FROM household WHERE village_code LIKE '430621%'"
        )
    )
    assert "Index Cond: (((village_code)::text >= '430621'::text)" in like, like

    await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    await conn.exec_driver_sql(
        "PREPARE county_range (varchar, varchar) AS "
        "SELECT id FROM household WHERE village_code >= $1 AND village_code < $2"
    )
    try:
        generic = "\n".join(
            row[0]
            for row in await conn.exec_driver_sql(
                "EXPLAIN EXECUTE county_range ('430621', '430622')"
            )
        )
    finally:
        await conn.exec_driver_sql("DEALLOCATE county_range")
    assert "Index Cond: (((village_code)::text >= ($1)::text)" in generic, generic


async def test_foreign_keys_hold_across_the_collation(session: AsyncSession) -> None:
    """household.village_code and region.code share their collation: the key still holds."""
    session.add(Region(code=VILLAGE, name="村", level=int(codes.Level.village)))
    await session.flush()
    household = Household(
        number="4306211012010001",
        village_code=VILLAGE,
        head_name="张",
        attribute="general",
        status="in_poverty",
        main_cause="illness",
        identified_year=2014,
    )
    session.add(household)
    await session.flush()
    joined = select(col(Region.name)).join(
        Household, col(Household.village_code) == col(Region.code)
    )
    assert await session.scalar(joined) == "村"

    household.village_code = "430621101299"
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await session.flush()
