"""Income snapshots: exact arithmetic in fen, money as two-place strings, lines per year and region.

ACCEPTANCE 2 of issue 3: exact on awkward inputs (0.1 + 0.2 yuan, a household of 3, totals in
the millions); per-capita follows DOMAIN.md, rounded half up (away from zero) to the fen.
Issue 14, item 5: rigid expenses and the monitoring transfers; the income judged for monitoring
(the region's excluded items left out) against the monitoring threshold; no poverty line after
2020, and the year of a threshold carried forward.
"""

from __future__ import annotations

import re
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.monitoring.models import IncomeExclusion
from app.records.schemas import COMPONENTS, RIGID_EXPENSES, IncomeSnapshotWrite
from app.records.service import content_hash
from tests.assertions import problem
from tests.builders import COUNTY_A, VILLAGE_A1, World
from tests.records.bodies import API, Table, counts, snapshot_body

MONEY = re.compile(r"^-?\d+\.\d{2}$")
TOTALS = (
    "property_income",
    "transfer_income",
    "net_income",
    "per_capita_income",
    "rigid_expenses",
    "monitoring_income",
)
TRANSFERS = [name for name in COMPONENTS if name.startswith("transfer_")]


async def put_snapshot(
    client: httpx.AsyncClient,
    world: World,
    *,
    household: str = "a1",
    who: str = "officer_a1",
    snapshot_id: uuid.UUID | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = snapshot_body(world.households[household].id, **fields)
    response = await client.put(
        f"{API}/income-snapshots/{snapshot_id or uuid.uuid4()}",
        json=body,
        headers=world.headers(who),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    for name in (*COMPONENTS, *RIGID_EXPENSES, *TOTALS):
        assert isinstance(result[name], str) and MONEY.match(result[name]), (name, result[name])
    return result


# (components sent, household size, figures expected back)
AWKWARD: list[tuple[dict[str, Any], int, dict[str, str]]] = [
    # 0.1 + 0.2 is 0.30000000000000004 in floating point: not here, as number or string.
    ({"wage_income": 0.1, "business_income": 0.2}, 1, {"net_income": "0.30"}),
    ({"wage_income": "0.1", "business_income": "0.2"}, 1, {"net_income": "0.30"}),
    (
        {"property_dividend": 0.1, "property_other": "0.2"},
        1,
        {"property_income": "0.30", "net_income": "0.30", "transfer_income": "0.00"},
    ),
    # Ten transfers of 0.1 add up to 0.9999999999999999 in floating point.
    (
        dict.fromkeys(TRANSFERS, 0.1),
        1,
        {"transfer_income": "1.00", "net_income": "1.00", "property_income": "0.00"},
    ),
    # Rigid expenses add up beside the net income, never subtracted from it.
    (
        {"wage_income": "0.3", "medical_out_of_pocket": 0.1, "education_expenses": "0.2"},
        1,
        {"rigid_expenses": "0.30", "net_income": "0.30", "monitoring_income": "0.30"},
    ),
    # A household of 3: 100.00 / 3 = 33.333… → 33.33; 200.00 / 3 = 66.666… → 66.67.
    ({"wage_income": "100.00"}, 3, {"net_income": "100.00", "per_capita_income": "33.33"}),
    ({"wage_income": 200}, 3, {"per_capita_income": "66.67"}),
    # Exactly half a fen rounds up: 0.05 / 2 = 2.5 fen → 3 fen (half-even would give 2).
    ({"wage_income": "0.05"}, 2, {"per_capita_income": "0.03"}),
    ({"wage_income": 0.01}, 2, {"per_capita_income": "0.01"}),
    ({"wage_income": "1.00"}, 8, {"per_capita_income": "0.13"}),  # 12.5 fen
    ({"wage_income": "0.03"}, 2, {"per_capita_income": "0.02"}),  # 1.5 fen
    ({"wage_income": "0.07"}, 2, {"per_capita_income": "0.04"}),  # 3.5 fen
    # Expenses larger than income: a negative net, rounded half away from zero.
    (
        {"business_income": "100.00", "business_expenses": "300.01"},
        2,
        {"net_income": "-200.01", "per_capita_income": "-100.01"},  # -100.005
    ),
    ({"business_expenses": "0.05"}, 2, {"net_income": "-0.05", "per_capita_income": "-0.03"}),
    ({"business_expenses": 0.05}, 3, {"per_capita_income": "-0.02"}),  # -1.67 fen
    ({"business_expenses": "0.01"}, 3, {"per_capita_income": "0.00"}),  # not "-0.00"
    ({"business_expenses": "1000"}, 1, {"net_income": "-1000.00"}),
    # Nothing at all: every figure is zero.
    ({}, 4, dict.fromkeys(TOTALS, "0.00")),
]


async def test_awkward_amounts_are_exact(client: httpx.AsyncClient, world: World) -> None:
    table = Table()
    for fields, size, expected in AWKWARD:
        with table.case(f"{fields} ÷ {size}"):
            result = await put_snapshot(client, world, household_size=size, **fields)
            assert {name: result[name] for name in expected} == expected


async def test_components_and_totals_follow_the_domain_formula(
    client: httpx.AsyncClient, world: World
) -> None:
    """The example of the API documentation, mixing JSON numbers and decimal strings."""
    sent = {
        "wage_income": "12000.00",
        "business_income": 3500.5,
        "business_expenses": "800",
        "property_dividend": "600.00",
        "property_other": 120,
        "transfer_family_planning": "1.1",
        "transfer_dibao": "3960.00",
        "transfer_tekun": 0,
        "transfer_pension": "1800.00",
        "transfer_ecological": 12.34,
        "transfer_other": "0.56",
    }
    result = await put_snapshot(client, world, household_size=3, **sent)

    # Each component comes back as given, with two places.
    assert {name: result[name] for name in sent} == {
        "wage_income": "12000.00",
        "business_income": "3500.50",
        "business_expenses": "800.00",
        "property_dividend": "600.00",
        "property_other": "120.00",
        "transfer_family_planning": "1.10",
        "transfer_dibao": "3960.00",
        "transfer_tekun": "0.00",
        "transfer_pension": "1800.00",
        "transfer_ecological": "12.34",
        "transfer_other": "0.56",
    }
    # DOMAIN.md: wage + business + property + transfer − business expenses; ÷ household size.
    amounts = {name: Decimal(str(value)) for name, value in sent.items()}
    property_income = amounts["property_dividend"] + amounts["property_other"]
    transfer_income = sum((amounts.get(name, Decimal(0)) for name in TRANSFERS), Decimal(0))
    net = (
        amounts["wage_income"]
        + amounts["business_income"]
        + property_income
        + transfer_income
        - amounts["business_expenses"]
    )
    per_capita = (net / 3).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert result["property_income"] == "720.00" == f"{property_income:.2f}"
    assert result["transfer_income"] == "5774.00" == f"{transfer_income:.2f}"
    assert result["net_income"] == "21194.50" == f"{net:.2f}"
    assert result["per_capita_income"] == "7064.83" == f"{per_capita:.2f}"  # 7064.8333…
    assert result["household_size"] == 3 and result["year"] == 2024 and result["kind"] == "annual"


@pytest.mark.parametrize("as_number", [True, False])
async def test_totals_in_the_millions(
    client: httpx.AsyncClient, world: World, as_number: bool
) -> None:
    # The largest amount a component takes (12 digits), in each of the fourteen income
    # components and the three rigid expenses.
    top = "9999999999.99"
    incomes = [name for name in COMPONENTS if name != "business_expenses"]
    sent: dict[str, Any] = {
        name: float(top) if as_number else top for name in (*incomes, *RIGID_EXPENSES)
    }
    sent["business_expenses"] = 1234567.89 if as_number else "1234567.89"
    result = await put_snapshot(client, world, household_size=7, **sent)

    net = Decimal(top) * 14 - Decimal("1234567.89")
    assert result["wage_income"] == top
    assert result["business_expenses"] == "1234567.89"
    assert result["property_income"] == "19999999999.98"
    assert result["transfer_income"] == "99999999999.90"
    assert result["rigid_expenses"] == "29999999999.97"
    assert result["net_income"] == f"{net:.2f}" == "139998765431.97"
    # 139998765431.97 / 7 = 19999823633.138… → 19999823633.14
    per_capita = (net / 7).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert result["per_capita_income"] == f"{per_capita:.2f}" == "19999823633.14"
    assert result["monitoring_income"] == result["per_capita_income"]


async def test_millions_with_a_household_of_three(client: httpx.AsyncClient, world: World) -> None:
    result = await put_snapshot(
        client,
        world,
        household_size=3,
        wage_income=1234567.89,
        business_income="2000000.02",
        transfer_dibao=0.1,
        transfer_pension=0.2,
    )
    assert result["net_income"] == "3234568.21"
    assert result["per_capita_income"] == "1078189.40"  # 1078189.403…


async def test_read_back_shows_the_same_figures(client: httpx.AsyncClient, world: World) -> None:
    snapshot_id = uuid.uuid4()
    written = await put_snapshot(
        client,
        world,
        snapshot_id=snapshot_id,
        household_size=3,
        wage_income="100.00",
        business_expenses=0.01,
    )
    headers = world.headers("secretary_a1")
    one = await client.get(f"{API}/income-snapshots/{snapshot_id}", headers=headers)
    assert one.status_code == 200, one.text
    listed = await client.get(
        f"{API}/households/{world.households['a1'].id}/income-snapshots", headers=headers
    )
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    for body in (one.json(), item):
        for name in (*COMPONENTS, *TOTALS, "poverty_line", "monitoring_threshold"):
            assert body[name] == written[name], name
        assert body["net_income"] == "99.99" and body["per_capita_income"] == "33.33"


# --- invalid amounts and sizes ----------------------------------------------------------------


# (field, value sent): each a 422 naming body.<field>.
INVALID_AMOUNTS: list[tuple[str, Any]] = [
    ("wage_income", "0.001"),
    ("wage_income", 0.001),
    ("business_income", "12.345"),
    ("transfer_dibao", 0.30000000000000004),  # 0.1 + 0.2 computed in floating point
    ("business_expenses", "1.999"),
    ("wage_income", -1),
    ("wage_income", "-0.01"),
    ("business_expenses", -100),
    ("transfer_other", "-5"),
    ("property_dividend", "abc"),
    ("property_other", ""),
    ("transfer_pension", "NaN"),
    ("transfer_tekun", "Infinity"),
    ("wage_income", "10000000000.00"),  # beyond 9,999,999,999.99
    ("wage_income", None),
    ("wage_income", True),
]
INVALID_SIZES: list[Any] = [0, -1, -3, 31, "three", 1.5, None]
INVALID_OTHERS: list[tuple[str, Any]] = [
    ("year", 2009),
    ("year", 2101),
    ("kind", "quarterly"),
    ("recorded_at", "2024-12-10T15:00:00"),  # no offset
    ("recorded_at", "yesterday"),
    ("household_id", "not-a-uuid"),
    ("revision", 0),
    ("per_capita_income", "5000.00"),  # computed by the server, not accepted from the phone
]


async def test_every_field_error_is_a_422_naming_it_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household_id = world.households["a1"].id
    before = await counts(session)
    cases = [
        *INVALID_AMOUNTS,
        *(("household_size", size) for size in INVALID_SIZES),
        *INVALID_OTHERS,
    ]
    table = Table()
    for field, value in cases:
        with table.case(f"{field}={value!r:.40}"):
            response = await client.put(
                f"{API}/income-snapshots/{uuid.uuid4()}",
                json={**snapshot_body(household_id, wage_income="100.00"), field: value},
                headers=world.headers("officer_a1"),
            )
            body = problem(response, 422, "validation_failed", f"body.{field}")
            # Only the offending field is named.
            assert [e["field"] for e in body["errors"]] == [f"body.{field}"]
    table.check()
    assert await counts(session) == before


async def test_several_errors_are_named_together(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household_id = world.households["a1"].id
    before = await counts(session)
    response = await client.put(
        f"{API}/income-snapshots/{uuid.uuid4()}",
        json=snapshot_body(household_id, household_size=0, wage_income="1.001", transfer_dibao=-2),
        headers=world.headers("officer_a1"),
    )
    body = problem(response, 422, "validation_failed")
    assert {e["field"] for e in body["errors"]} == {
        "body.household_size",
        "body.wage_income",
        "body.transfer_dibao",
    }
    assert await counts(session) == before


# --- poverty lines and monitoring thresholds ----------------------------------------------------


# (year, national poverty line, monitoring threshold) as a snapshot of that year shows them.
NATIONAL: list[tuple[int, str | None, str | None]] = [
    (2010, "2300.00", None),  # the 2010 line (2,300 yuan at 2010 prices)
    (2011, "2536.00", None),
    (2016, "2952.00", None),
    (2019, "3218.00", None),
    (2020, "4000.00", None),
    (2021, None, "6000.00"),  # no poverty line after 2020; the monitoring threshold starts
    (2024, None, "6000.00"),
    (2100, None, "6000.00"),
]


async def test_national_lines_by_year(client: httpx.AsyncClient, world: World) -> None:
    table = Table()
    for year, line, threshold in NATIONAL:
        with table.case(year):
            result = await put_snapshot(
                client, world, year=year, household_size=1, wage_income="3500.00"
            )
            assert (result["poverty_line"], result["monitoring_threshold"]) == (line, threshold)
            expected_above = None if line is None else Decimal("3500.00") > Decimal(line)
            assert result["above_poverty_line"] is expected_above
            # The threshold of 2021 carried forward says so.
            assert result["monitoring_threshold_year"] == (None if threshold is None else 2021)
            assert result["above_monitoring_threshold"] is (None if threshold is None else False)
    table.check()


# (household size, wage income, above the 2020 line of 4000.00)
ABOVE: list[tuple[int, str, bool]] = [
    (1, "4000.00", False),  # exactly the line is not above it
    (1, "4000.01", True),
    (1, "3999.99", False),
    (3, "12000.00", False),  # 4000.00 each
    (3, "12000.02", True),  # 4000.0066… → 4000.01
    (3, "12000.01", False),  # 4000.0033… → 4000.00: rounded, then compared
]


async def test_above_the_line_is_strictly_above(client: httpx.AsyncClient, world: World) -> None:
    table = Table()
    for size, wage, above in ABOVE:
        with table.case(f"{wage} ÷ {size}"):
            result = await put_snapshot(
                client, world, year=2020, household_size=size, wage_income=wage
            )
            assert result["poverty_line"] == "4000.00"
            assert result["above_poverty_line"] is above
    table.check()


async def set_threshold(
    client: httpx.AsyncClient, world: World, scope: str, year: int, **figures: Any
) -> httpx.Response:
    response = await client.put(
        f"{API}/thresholds/{scope}/{year}", json=figures, headers=world.headers("admin_a")
    )
    assert response.status_code in (200, 201), response.text
    return response


async def test_a_county_line_overrides_the_national_one_for_its_households(
    client: httpx.AsyncClient, world: World
) -> None:
    a1_2020 = uuid.uuid4()
    await put_snapshot(
        client, world, snapshot_id=a1_2020, year=2020, household_size=1, wage_income="4200.00"
    )
    b1_2020 = uuid.uuid4()
    await put_snapshot(
        client,
        world,
        household="b1",
        who="admin_b",
        snapshot_id=b1_2020,
        year=2020,
        household_size=1,
        wage_income="4200.00",
    )

    async def figures(snapshot_id: uuid.UUID, who: str) -> tuple[Any, Any, Any]:
        response = await client.get(
            f"{API}/income-snapshots/{snapshot_id}", headers=world.headers(who)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body["poverty_line"], body["monitoring_threshold"], body["above_poverty_line"]

    assert await figures(a1_2020, "officer_a1") == ("4000.00", None, True)

    created = await set_threshold(client, world, COUNTY_A, 2020, poverty_line="4500.00")
    assert created.status_code == 201
    assert created.json()["poverty_line"] == "4500.00"

    # The stored snapshot is judged against the figures in force now.
    assert await figures(a1_2020, "officer_a1") == ("4500.00", None, False)
    # County B keeps the national figures.
    assert await figures(b1_2020, "admin_b") == ("4000.00", None, True)
    # Years before the county's row keep the national line; none is carried past 2020.
    before = await put_snapshot(client, world, year=2019, household_size=1)
    assert (before["poverty_line"], before["monitoring_threshold"]) == ("3218.00", None)
    later = await put_snapshot(client, world, year=2021, household_size=1)
    assert (later["poverty_line"], later["monitoring_threshold"]) == (None, "6000.00")
    # The list shows the same figures as the single read.
    listed = await client.get(
        f"{API}/households/{world.households['a1'].id}/income-snapshots",
        headers=world.headers("officer_a1"),
    )
    by_year = {item["year"]: item["poverty_line"] for item in listed.json()["items"]}
    assert by_year == {2019: "3218.00", 2020: "4500.00", 2021: None}

    # Changing the county's row again is a 200 and shows at once.
    changed = await set_threshold(client, world, COUNTY_A, 2020, poverty_line="4100.00")
    assert changed.status_code == 200
    assert await figures(a1_2020, "officer_a1") == ("4100.00", None, True)


async def test_a_county_line_after_2020_is_no_line(client: httpx.AsyncClient, world: World) -> None:
    """A line for a later year is refused; the threshold alone is what a later year has."""
    refused = await client.put(
        f"{API}/thresholds/{COUNTY_A}/2024",
        json={"poverty_line": "4500.00", "monitoring_threshold": 7000},
        headers=world.headers("admin_a"),
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["body.poverty_line"]
    await set_threshold(client, world, COUNTY_A, 2024, monitoring_threshold=7000)
    result = await put_snapshot(client, world, year=2024, household_size=1, wage_income="8000")
    assert (result["poverty_line"], result["above_poverty_line"]) == (None, None)
    assert (result["monitoring_threshold"], result["monitoring_threshold_year"]) == (
        "7000.00",
        2024,
    )
    # Carried forward, the threshold says from which year; before it, the national one.
    later = await put_snapshot(client, world, year=2026, household_size=1, wage_income="8000")
    assert (later["monitoring_threshold"], later["monitoring_threshold_year"]) == (
        "7000.00",
        2024,
    )
    before = await put_snapshot(client, world, year=2023, household_size=1, wage_income="8000")
    assert (before["monitoring_threshold"], before["monitoring_threshold_year"]) == (
        "6000.00",
        2021,
    )


async def test_the_most_specific_region_wins(client: httpx.AsyncClient, world: World) -> None:
    await set_threshold(client, world, COUNTY_A, 2020, poverty_line="4500.00")
    await set_threshold(client, world, VILLAGE_A1, 2020, poverty_line="4600.00")
    a1 = await put_snapshot(client, world, year=2020, household_size=1)
    a2 = await put_snapshot(client, world, household="a2", who="admin_a", year=2020)
    b1 = await put_snapshot(client, world, household="b1", who="admin_b", year=2020)
    assert (a1["poverty_line"], a2["poverty_line"], b1["poverty_line"]) == (
        "4600.00",
        "4500.00",
        "4000.00",
    )
    # The same for the monitoring threshold, by year (2024: the village's; 2025: carried).
    await set_threshold(client, world, COUNTY_A, 2024, monitoring_threshold="7500.00")
    await set_threshold(client, world, VILLAGE_A1, 2024, monitoring_threshold="7600.00")
    a1 = await put_snapshot(client, world, year=2025, household_size=1)
    a2 = await put_snapshot(client, world, household="a2", who="admin_a", year=2025)
    b1 = await put_snapshot(client, world, household="b1", who="admin_b", year=2025)
    assert [(s["monitoring_threshold"], s["monitoring_threshold_year"]) for s in (a1, a2, b1)] == [
        ("7600.00", 2024),
        ("7500.00", 2024),
        ("6000.00", 2021),
    ]


async def test_a_county_threshold_alone_keeps_the_national_line(
    client: httpx.AsyncClient, world: World
) -> None:
    await set_threshold(client, world, COUNTY_A, 2020, monitoring_threshold="5000.00", note="省定")
    result = await put_snapshot(client, world, year=2020, household_size=1)
    assert (result["poverty_line"], result["monitoring_threshold"]) == ("4000.00", "5000.00")
    await set_threshold(client, world, COUNTY_A, 2023, monitoring_threshold="8050.00", note="省定")
    result = await put_snapshot(client, world, year=2024, household_size=1)
    assert (result["poverty_line"], result["monitoring_threshold"]) == (None, "8050.00")


# --- income for monitoring ----------------------------------------------------------------------


async def test_rigid_expenses_and_monitoring_transfers(
    client: httpx.AsyncClient, world: World
) -> None:
    result = await put_snapshot(
        client,
        world,
        year=2025,
        household_size=2,
        wage_income="10000",
        transfer_education_aid="1000.10",
        transfer_medical_reimbursement="2000",
        transfer_housing_subsidy="3000",
        transfer_one_off_relief="500",
        medical_out_of_pocket="6000",
        education_expenses="1500.50",
        other_rigid_expenses="0.01",
    )
    # The four transfers count in the transfer income; the rigid expenses are not subtracted.
    assert result["transfer_income"] == "6500.10"
    assert result["net_income"] == "16500.10"
    assert result["per_capita_income"] == "8250.05"
    assert result["rigid_expenses"] == "7500.51"
    assert (result["medical_out_of_pocket"], result["other_rigid_expenses"]) == ("6000.00", "0.01")
    # No item excluded (the default): the monitoring income is the per capita.
    assert result["monitoring_income"] == "8250.05"
    assert result["above_monitoring_threshold"] is True


async def test_the_regions_excluded_items_are_left_out_of_the_monitoring_income(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    # National: one-off relief left out; county A leaves out its own set instead (the most
    # specific scope with rows decides the whole set).
    session.add(IncomeExclusion(scope="national", item="transfer_one_off_relief"))
    session.add(IncomeExclusion(scope=COUNTY_A, item="transfer_medical_reimbursement"))
    session.add(IncomeExclusion(scope=COUNTY_A, item="property_dividend"))
    await session.flush()
    amounts = {
        "wage_income": "9000",
        "property_dividend": "1000",
        "transfer_medical_reimbursement": "2000.01",
        "transfer_one_off_relief": "3000",
    }
    a1 = await put_snapshot(client, world, year=2025, household_size=3, **amounts)
    b1 = await put_snapshot(
        client, world, household="b1", who="admin_b", year=2025, household_size=3, **amounts
    )
    for body in (a1, b1):
        assert body["net_income"] == "15000.01"
        assert body["per_capita_income"] == "5000.00"  # 5000.0033…
    # A: (15000.01 − 1000 − 2000.01) / 3 = 4000.00; B: (15000.01 − 3000) / 3 = 4000.0033…
    assert (a1["monitoring_income"], b1["monitoring_income"]) == ("4000.00", "4000.00")
    assert a1["above_monitoring_threshold"] is b1["above_monitoring_threshold"] is False


@pytest.mark.parametrize(
    ("wage", "above"), [("18000.00", False), ("18000.02", True), ("18000.01", False)]
)
async def test_above_the_monitoring_threshold_is_strictly_above(
    client: httpx.AsyncClient, world: World, wage: str, above: bool
) -> None:
    result = await put_snapshot(client, world, year=2026, household_size=3, wage_income=wage)
    assert result["monitoring_threshold"] == "6000.00"
    assert result["above_monitoring_threshold"] is above


def test_the_hash_of_a_snapshot_without_the_new_items_is_unchanged() -> None:
    """Snapshots stored before the monitoring items keep their content hash: a retry of one
    is still recognised as such (omitted and explicit zero items hash alike)."""
    body = {
        "revision": 1,
        "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
        "year": 2024,
        "kind": "annual",
        "household_size": 3,
        "recorded_at": "2024-12-10T15:00:00+08:00",
        "wage_income": "12000.00",
        "transfer_dibao": 3960,
    }
    # The hash of this body before issue 14 (computed with the schema of commit fe8a374).
    assert content_hash(IncomeSnapshotWrite.model_validate(body)) == (
        "a65f52fa83725cbd41b6cfabd77cc42be27994dc882212f8d6a421dcab14e10c"
    )
    zeros = {name: "0.00" for name in (*RIGID_EXPENSES, "transfer_one_off_relief")}
    assert content_hash(IncomeSnapshotWrite.model_validate({**body, **zeros})) == content_hash(
        IncomeSnapshotWrite.model_validate(body)
    )
