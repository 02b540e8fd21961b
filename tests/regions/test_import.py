"""Importing a county's divisions from CSV: idempotent, updating, and all-or-nothing."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.regions.models import Region
from app.regions.service import import_regions

HEADER = "code,name,parent_code,rural_population\n"
COUNTY = "371524000000"
TOWN = "371524101000"

GOOD = (
    HEADER
    + f"{COUNTY},东阿县,,\n"
    + f"{TOWN},铜城街道,{COUNTY},\n"
    + "371524101201,西关村,,1320\n"  # parent left empty: the nearest division above
    + f"371524101202,东关村,{TOWN},870\n"
    + "371524101201-01,一组,,\n"
)


async def regions_of_county(session: AsyncSession) -> dict[str, Region]:
    rows = await session.scalars(select(Region).where(Region.code.startswith("371524")))  # type: ignore[attr-defined]
    return {r.code: r for r in rows}


async def count_regions(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Region)) or 0


async def test_import_creates_the_divisions(session: AsyncSession) -> None:
    calls: list[tuple[int, int]] = []
    report = await import_regions(
        session, text=GOOD, progress=lambda done, total: calls.append((done, total))
    )
    assert report.errors == []
    assert (report.created, report.updated, report.unchanged) == (5, 0, 0)
    assert calls[-1] == (5, 5)
    regions = await regions_of_county(session)
    assert {code: (r.level, r.parent_code) for code, r in regions.items()} == {
        COUNTY: (3, None),
        TOWN: (4, COUNTY),
        "371524101201": (5, TOWN),
        "371524101202": (5, TOWN),
        "371524101201-01": (6, "371524101201"),
    }
    assert regions["371524101201"].name == "西关村"
    assert regions["371524101201"].rural_population == 1320
    assert regions[TOWN].rural_population is None


async def test_a_byte_order_mark_is_ignored(session: AsyncSession) -> None:
    report = await import_regions(session, text="\ufeff" + GOOD)
    assert report.errors == []
    assert report.created == 5


async def test_a_second_run_changes_nothing(session: AsyncSession) -> None:
    await import_regions(session, text=GOOD)
    stamps = {code: r.updated_at for code, r in (await regions_of_county(session)).items()}
    report = await import_regions(session, text=GOOD)
    assert report.errors == []
    assert (report.created, report.updated, report.unchanged) == (0, 0, 5)
    after = await regions_of_county(session)
    assert {code: r.updated_at for code, r in after.items()} == stamps


async def test_changed_names_and_populations_are_updated(session: AsyncSession) -> None:
    await import_regions(session, text=GOOD)
    changed = GOOD.replace("西关村,,1320", "西关社区,,1400").replace("东关村", "东关新村")
    changed += "371524101203,南关村,,500\n"
    report = await import_regions(session, text=changed)
    assert report.errors == []
    assert (report.created, report.updated, report.unchanged) == (1, 2, 3)
    regions = await regions_of_county(session)
    assert (regions["371524101201"].name, regions["371524101201"].rural_population) == (
        "西关社区",
        1400,
    )
    assert regions["371524101202"].name == "东关新村"
    assert regions["371524101202"].rural_population == 870
    assert regions["371524101203"].parent_code == TOWN


async def test_errors_are_reported_per_line_and_nothing_is_written(
    session: AsyncSession,
) -> None:
    text = (
        HEADER
        + f"{COUNTY},东阿县,,\n"  # line 2: fine
        + "37152410120x,坏村,,\n"  # line 3: bad code
        + f"{TOWN},铜城街道,{COUNTY},\n"  # line 4: fine
        + f"{TOWN},铜城街道,{COUNTY},\n"  # line 5: duplicate code
        + "371524101202,东关村,371524102000,870\n"  # line 6: parent is not above
        + "\n"  # line 7: blank lines are skipped, not counted as records
        + "371524101203,南关村,,many\n"  # line 8: population is not a number
        + "371524101204,北关村,,,\n"  # line 9: one column too many
        + "371524101205,,,\n"  # line 10: no name
        + f"371524101201-02,二组,{TOWN},\n"  # line 11: a natural village right under a town
    )
    before = await count_regions(session)
    report = await import_regions(session, text=text)
    assert [e.split(":")[0] for e in report.errors] == [
        "line 3",
        "line 5",
        "line 6",
        "line 8",
        "line 9",
        "line 10",
        "line 11",
    ]
    assert "code" in report.errors[0]
    assert "appears twice" in report.errors[1]
    assert "parent_code" in report.errors[2]
    assert "rural_population" in report.errors[3]
    await session.flush()
    assert await count_regions(session) == before


async def test_an_unknown_parent_fails_the_whole_file(session: AsyncSession) -> None:
    await import_regions(session, text=GOOD)
    text = (
        HEADER
        + "371524101201,西关社区,,1400\n"  # an update…
        + "371524101206,新村,,\n"  # …a creation…
        + "371599101000,无县之镇,,\n"  # …and a town of a county nobody knows
        + "371524102201,无镇之村,371524102000,\n"  # parent above, but unknown
        + "371524101209-01,一组,,\n"  # a natural village of a village nobody knows
    )
    before = await count_regions(session)
    report = await import_regions(session, text=text)
    assert [e.split(":")[0] for e in report.errors] == ["line 4", "line 5", "line 6"]
    # Nothing is left pending in the session either: flushing writes nothing.
    await session.flush()
    assert await count_regions(session) == before
    assert (await session.get(Region, "371524101201")).name == "西关村"  # type: ignore[union-attr]


async def test_a_file_without_the_header_is_refused(session: AsyncSession) -> None:
    before = await count_regions(session)
    for text in [
        f"{COUNTY},东阿县,,\n{TOWN},铜城街道,,\n",  # no header at all
        f"code,name,population\n{COUNTY},东阿县,\n",  # a column missing
        "",
    ]:
        report = await import_regions(session, text=text)
        assert len(report.errors) == 1
        assert report.errors[0].startswith("header")
        assert report.created == 0
    await session.flush()
    assert await count_regions(session) == before
