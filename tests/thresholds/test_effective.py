"""The figures in force for a year and region: no poverty line after 2020, the year a threshold
comes from, and the SQL step function agreeing with `effective_thresholds` (issue 14, item 5)."""

from __future__ import annotations

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.thresholds.models import PovertyThreshold
from app.thresholds.service import (
    Effective,
    effective_thresholds,
    in_step,
    steps_cte,
    threshold_steps,
)
from tests.builders import COUNTY_A, TOWN_A1, VILLAGE_A1, VILLAGE_A2, VILLAGE_A3, World


async def test_no_poverty_line_after_2020_and_the_years_of_the_figures(
    session: AsyncSession, world: World
) -> None:
    found = await effective_thresholds(
        session, region_code=VILLAGE_A1, years=[2009, 2019, 2020, 2021, 2030]
    )
    assert found == {
        2009: Effective(None, None, None, None),
        2019: Effective(321_800, None, 2019, None),
        2020: Effective(400_000, None, 2020, None),
        2021: Effective(None, 600_000, None, 2021),  # the 2020 line is not carried forward
        2030: Effective(None, 600_000, None, 2021),  # the threshold is, saying from when
    }


async def test_a_line_typed_for_a_later_year_is_ignored(
    session: AsyncSession, world: World
) -> None:
    session.add(PovertyThreshold(scope=COUNTY_A, year=2024, poverty_line=450_000))
    session.add(PovertyThreshold(scope=COUNTY_A, year=2018, poverty_line=310_000))
    await session.flush()
    found = await effective_thresholds(session, region_code=VILLAGE_A1, years=[2018, 2019, 2024])
    assert found[2018] == Effective(310_000, None, 2018, None)  # the county's own
    assert found[2019] == Effective(321_800, None, 2019, None)  # a later national row
    assert found[2024] == Effective(None, 600_000, None, 2021)


async def test_the_sql_steps_agree_with_the_python_form(
    session: AsyncSession, world: World
) -> None:
    for scope, year, line, threshold in [
        (COUNTY_A, 2019, 330_000, None),
        (TOWN_A1, 2020, 410_000, 650_000),
        (VILLAGE_A2, 2023, 500_000, 800_000),  # its line after 2020: ignored
        (COUNTY_A, 2025, None, 750_000),
    ]:
        session.add(
            PovertyThreshold(
                scope=scope, year=year, poverty_line=line, monitoring_threshold=threshold
            )
        )
    await session.flush()
    steps = await threshold_steps(session, code=COUNTY_A)
    th = steps_cte(steps.steps)
    years = range(2008, 2030)
    for village in (VILLAGE_A1, VILLAGE_A2, VILLAGE_A3):
        python = await effective_thresholds(session, region_code=village, years=years)
        for year in years:
            row = (
                await session.execute(
                    select(
                        th.c.poverty_line, th.c.monitoring_threshold, th.c.monitoring_threshold_year
                    ).where(in_step(th, key=steps.key(literal(village)), year=literal(year)))
                )
            ).one_or_none()
            expected = python[year]
            sql = tuple(row) if row is not None else (None, None, None)
            assert sql == (
                expected.poverty_line,
                expected.monitoring_threshold,
                expected.monitoring_threshold_year,
            ), (village, year)
