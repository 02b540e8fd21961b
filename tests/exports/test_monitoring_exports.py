"""Exports and monitoring: ordinary households, each household's latest case, the cases sheet
(XLSX) and file (GET /api/v1/exports/monitoring-cases.csv), no poverty line after 2020."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from datetime import UTC, date, datetime
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.exports import service as export_service
from app.households.models import Household
from app.monitoring.models import MonitoringCase, MonitoringStep
from app.thresholds.models import PovertyThreshold
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    ID_HEAD_A1,
    PHONE_A1,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    World,
    make_household,
    make_id_number,
)
from tests.exports.test_exports import read_csv
from tests.records.bodies import put, snapshot_body

API = "/api/v1/exports"
FARM_ID_NUMBER = make_id_number(702, "19810909")
FARM_PHONE = "13905357788"


async def export(
    client: httpx.AsyncClient, world: World, who: str, code: str, what: str
) -> httpx.Response:
    return await client.get(f"{API}/{what}", params={"region": code}, headers=world.headers(who))


class Cases:
    """Monitoring cases written straight to the tables (the procedure is app.monitoring's)."""

    def __init__(self, session: AsyncSession, world: World) -> None:
        self.session = session
        self.world = world
        self.officer = world.users["officer_a1"]

    async def case(self, household: Household, **fields: Any) -> MonitoringCase:
        closed = fields.get("status", "proposed") in ("cleared", "rejected")
        case = MonitoringCase(
            id=uuid.uuid4(),
            household_id=household.id,
            revision=1,
            content_hash=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            author_id=self.officer.id,
            updated_by=self.officer.id,
            category=fields.pop("category", "sudden_hardship"),
            risk_types=fields.pop("risk_types", ["illness"]),
            found_via=fields.pop("found_via", "cadre_visit"),
            found_on=fields.pop("found_on", date(2026, 3, 2)),
            open_household_id=None if closed else household.id,
            description=f"户主身份证{FARM_ID_NUMBER}",
            **fields,
        )
        self.session.add(case)
        await self.session.flush()
        return case

    async def steps(self, case: MonitoringCase, *taken: tuple[str, str, datetime]) -> None:
        for seq, (step, decision, at) in enumerate(taken, start=1):
            self.session.add(
                MonitoringStep(
                    case_id=case.id,
                    seq=seq,
                    step=step,
                    decision=decision,
                    actor_id=self.world.users["admin_a"].id,
                    actor_role="county_admin",
                    status_from="x",
                    status_to="y",
                    taken_at=at,
                )
            )
        await self.session.flush()


@pytest.fixture
async def monitored(session: AsyncSession, world: World) -> dict[str, Any]:
    """An ordinary household of village A1 with an open case and an older cleared one; a1 with
    only closed cases; a2 (village A2) with a proposed case; b1 (county B) with one too."""
    farm = await make_household(
        session,
        village=VILLAGE_A1,
        number="3715221012010050",
        head_name="孙立新",
        phone=FARM_PHONE,
        origin="ordinary",
        members=[{"name": "孙立新", "id_number": FARM_ID_NUMBER, "relation": "head"}],
    )
    cases = Cases(session, world)
    a1, a2, b1 = (world.households[k] for k in ("a1", "a2", "b1"))
    cleared = await cases.case(
        farm,
        category="marginal",
        risk_types=["illness", "high_rigid_expenses"],
        found_via="department_alert",
        found_on=date(2025, 2, 1),
        status="cleared",
        identified_on=date(2025, 3, 1),
        cleared_on=date(2025, 11, 20),
        clearing_method="assisted",
    )
    await cases.steps(
        cleared,
        *(
            (step, "approve", datetime(2025, month, 10, 2, 0, tzinfo=UTC))
            for month, step in enumerate(
                (
                    "village_review",
                    "town_review",
                    "county_approval",
                    "clearance_village_review",
                    "clearance_town_review",
                    "clearance_county_approval",
                ),
                start=2,
            )
        ),
    )
    # Found before the cleared one was, and still open: the open one is the household's.
    open_ = await cases.case(
        farm,
        category="sudden_hardship",
        risk_types=["disaster"],
        found_on=date(2024, 7, 15),
        status="identified",
        identified_on=date(2026, 8, 1),
    )
    await cases.steps(
        open_,
        ("village_review", "approve", datetime(2026, 7, 20, 1, 0, tzinfo=UTC)),
        ("town_review", "approve", datetime(2026, 7, 25, 1, 0, tzinfo=UTC)),
        ("county_approval", "approve", datetime(2026, 8, 1, 1, 30, tzinfo=UTC)),
    )
    rejected_old = await cases.case(
        a1, category="unstable_lifted", found_on=date(2025, 1, 5), status="rejected"
    )
    await cases.steps(
        rejected_old, ("village_review", "reject", datetime(2025, 1, 9, 8, 0, tzinfo=UTC))
    )
    cleared_new = await cases.case(
        a1,
        found_on=date(2026, 1, 5),
        status="cleared",
        identified_on=date(2026, 2, 1),
        cleared_on=date(2026, 9, 1),
        clearing_method="natural",
    )
    proposed = await cases.case(a2, found_on=date(2026, 10, 1), risk_types=["accident", "other"])
    await cases.case(b1, found_on=date(2026, 10, 1))
    await session.commit()
    return {
        "farm": farm,
        "cleared": cleared,
        "open": open_,
        "rejected_old": rejected_old,
        "cleared_new": cleared_new,
        "proposed": proposed,
    }


def by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["户ID"]: row for row in rows}


async def test_households_show_origin_and_their_latest_case(
    client: httpx.AsyncClient, world: World, monitored: dict[str, Any]
) -> None:
    rows = by_id(read_csv(await export(client, world, "admin_a", COUNTY_A, "households.csv")))
    farm = rows[str(monitored["farm"].id)]
    assert farm["户类别"] == "一般农户"
    for column in ("贫困户属性", "贫困户状态", "主要致贫原因", "识别年度", "脱贫年度"):
        assert farm[column] == "", column
    # Off the register there is no exit to assess.
    assert (farm["达到退出标准"], farm["未达退出标准原因"]) == ("", "")
    assert farm["户主身份证号"] == FARM_ID_NUMBER and farm["联系电话"] == FARM_PHONE
    # The open case, though found before the cleared one.
    assert (farm["监测对象类别"], farm["监测状态"]) == ("突发严重困难户", "已识别为监测对象")
    assert (farm["识别监测日期"], farm["风险消除日期"], farm["风险消除方式"]) == (
        "2026-08-01",
        "",
        "",
    )
    a1 = rows[str(world.households["a1"].id)]
    assert a1["户类别"] == "建档立卡户" and a1["贫困户状态"] == "未脱贫"
    assert a1["达到退出标准"] == "否"
    # Only closed cases: the latest found.
    assert (a1["监测对象类别"], a1["监测状态"]) == ("突发严重困难户", "风险已消除")
    assert (a1["识别监测日期"], a1["风险消除日期"], a1["风险消除方式"]) == (
        "2026-02-01",
        "2026-09-01",
        "自然消除",
    )
    a2 = rows[str(world.households["a2"].id)]
    assert (a2["监测状态"], a2["识别监测日期"]) == ("已申报", "")


async def test_the_cases_file_lists_every_case_of_the_region(
    client: httpx.AsyncClient, world: World, monitored: dict[str, Any]
) -> None:
    response = await export(client, world, "admin_a", COUNTY_A, "monitoring-cases.csv")
    assert "monitoring-cases-371522000000-" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "private, no-store"
    rows = read_csv(response)
    # By household number, then the date the risk was found; county B's case is not there.
    assert [row["监测ID"] for row in rows] == [
        str(monitored[name].id)
        for name in ("rejected_old", "cleared_new", "open", "cleared", "proposed")
    ]
    cleared = rows[3]
    assert cleared == {
        "户编号": "3715221012010050",
        "村代码": VILLAGE_A1,
        "村名": "王庄村",
        "户主姓名": "孙立新",
        "户主身份证号": FARM_ID_NUMBER,
        "联系电话": FARM_PHONE,
        "户类别": "一般农户",
        "监测对象类别": "边缘易致贫户",
        "风险类型": "因病、刚性支出较大",
        "发现方式": "部门筛查预警",
        "发现日期": "2025-02-01",
        "监测状态": "风险已消除",
        "识别监测日期": "2025-03-01",
        "风险消除日期": "2025-11-20",
        "风险消除方式": "帮扶消除",
        "程序步骤数": "6",
        "最近步骤": "风险消除县级审批(同意)",
        "最近步骤时间": "2025-07-10 10:00",  # China Standard Time
        "户ID": str(monitored["farm"].id),
        "监测ID": str(monitored["cleared"].id),
    }
    rejected, proposed = rows[0], rows[4]
    assert (rejected["户类别"], rejected["监测状态"], rejected["最近步骤"]) == (
        "建档立卡户",
        "未通过识别",
        "村级评议(不同意)",
    )
    assert (rejected["户主身份证号"], rejected["联系电话"]) == (ID_HEAD_A1, PHONE_A1)
    assert (proposed["程序步骤数"], proposed["最近步骤"], proposed["最近步骤时间"]) == ("0", "", "")
    assert proposed["风险类型"] == "因意外事故、其他"
    assert proposed["村名"] == "后屯村"
    # A town and a village: their cases only.
    town = read_csv(await export(client, world, "admin_a", TOWN_A1, "monitoring-cases.csv"))
    assert len(town) == 5
    village = read_csv(
        await export(client, world, "officer_a2", VILLAGE_A2, "monitoring-cases.csv")
    )
    assert [row["监测ID"] for row in village] == [str(monitored["proposed"].id)]


async def test_the_cases_file_masks_personal_data_and_checks_the_region(
    client: httpx.AsyncClient, world: World, monitored: dict[str, Any]
) -> None:
    response = await export(client, world, "secretary_a1", VILLAGE_A1, "monitoring-cases.csv")
    rows = read_csv(response)
    assert len(rows) == 4
    for secret in (FARM_ID_NUMBER, FARM_PHONE, ID_HEAD_A1, PHONE_A1, FARM_ID_NUMBER[6:14]):
        assert secret.encode() not in response.content, secret
    farm = next(row for row in rows if row["户主姓名"] == "孙立新")
    assert farm["户主身份证号"] == FARM_ID_NUMBER[:6] + "********" + FARM_ID_NUMBER[-4:]
    assert farm["联系电话"] == "139****7788"
    for who, code in (("officer_a2", VILLAGE_A1), ("admin_b", COUNTY_A), ("admin_a", COUNTY_B)):
        problem(
            await export(client, world, who, code, "monitoring-cases.csv"), 404, "region_not_found"
        )
    problem(
        await client.get(f"{API}/monitoring-cases.csv", headers=world.headers("admin_a")),
        422,
        "validation_failed",
        "query.region",
    )
    problem(
        await client.get(f"{API}/monitoring-cases.csv", params={"region": COUNTY_A}),
        401,
        "not_authenticated",
    )


async def test_the_workbook_holds_the_cases_sheet(
    client: httpx.AsyncClient, world: World, monitored: dict[str, Any]
) -> None:
    csv_rows = read_csv(await export(client, world, "admin_a", COUNTY_A, "monitoring-cases.csv"))
    response = await export(client, world, "admin_a", COUNTY_A, "households.xlsx")
    assert response.status_code == 200, response.text
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames == ["贫困户", "监测对象"]
    households = list(workbook["贫困户"].iter_rows(values_only=True))
    assert "户类别" in households[0] and "监测状态" in households[0]
    sheet = workbook["监测对象"]
    assert sheet.freeze_panes == "A2"
    table = list(sheet.iter_rows(values_only=True))
    headers = list(table[0])
    assert headers == list(csv_rows[0])
    assert len(table) - 1 == len(csv_rows) == 5
    for values, csv_row in zip(table[1:], csv_rows, strict=True):
        for header, value in zip(headers, values, strict=True):
            if value is None:
                shown = ""
            elif isinstance(value, datetime):
                shown = (
                    value.strftime("%Y-%m-%d %H:%M")
                    if header == "最近步骤时间"
                    else value.date().isoformat()
                )
            else:
                shown = str(value)
            assert shown == csv_row[header], (header, value, csv_row[header])
        assert isinstance(values[headers.index("户编号")], str)
        assert isinstance(values[headers.index("发现日期")], datetime)  # a date cell
        assert isinstance(values[headers.index("程序步骤数")], int)
    # Personal data stays masked in the workbook as well.
    masked = await export(client, world, "secretary_a1", VILLAGE_A1, "households.xlsx")
    with zipfile.ZipFile(io.BytesIO(masked.content)) as archive:
        raw = b"".join(archive.read(name) for name in archive.namelist())
    assert FARM_ID_NUMBER.encode() not in raw and FARM_PHONE.encode() not in raw


async def test_case_pages_join_into_the_same_rows(
    client: httpx.AsyncClient,
    world: World,
    monitored: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = read_csv(await export(client, world, "admin_a", COUNTY_A, "monitoring-cases.csv"))
    households = read_csv(await export(client, world, "admin_a", COUNTY_A, "households.csv"))
    for size in (1, 2, 4, 5):
        monkeypatch.setattr(export_service, "PAGE_ROWS", size)
        paged = await export(client, world, "admin_a", COUNTY_A, "monitoring-cases.csv")
        assert read_csv(paged) == whole, size
        paged = await export(client, world, "admin_a", COUNTY_A, "households.csv")
        assert read_csv(paged) == households, size


async def test_no_poverty_line_after_2020(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """The line of 2020 is not carried to 2024: an empty cell (never 0), and no reason of it."""
    session.add(PovertyThreshold(scope=COUNTY_A, year=2024, poverty_line=500_000))
    await session.commit()
    body = snapshot_body(world.households["a1"].id, year=2024, wage_income="1200.00")
    assert (await put(client, world, "income_snapshot", body)).status_code == 201
    (row,) = read_csv(await export(client, world, "admin_a", VILLAGE_A1, "households.csv"))
    assert row["最新年度"] == "2024" and row["最新人均纯收入(元)"] == "400.00"
    assert (row["当年贫困线(元)"], row["高于贫困线(元)"]) == ("", "")
    assert row["当年监测标准(元)"] == "6000.00"  # the national threshold of 2021, carried
    assert row["监测标准沿用年度"] == "2021"
    assert "人均纯收入未超过贫困线" not in row["未达退出标准原因"].split("；")
    response = await export(client, world, "admin_a", VILLAGE_A1, "households.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content))["贫困户"]
    headers, values = list(sheet.iter_rows(values_only=True))[:2]
    assert values[headers.index("当年贫困线(元)")] is None
    assert values[headers.index("高于贫困线(元)")] is None
