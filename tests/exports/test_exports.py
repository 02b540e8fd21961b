"""GET /api/v1/exports/households.csv and .xlsx: one row per household with its progress.

The rows are checked against the figures computed household by household in plain Python from
the generated county of tests/progress/region_data.py (the same data the region figures are
checked against), column by column; the XLSX must hold the very cells of the CSV, typed, and
open in a spreadsheet library (openpyxl). ACCEPTANCE 5 of issue 6 (memory) is bench/export.py.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from app.exports import service as export_service
from app.households.models import Household
from app.regions import codes
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    ID_HEAD_A1,
    PHONE_A1,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_B1,
    World,
)
from tests.progress.region_data import (
    FLAGS,
    INDICATORS,
    MEASURE_STATUSES,
    NAMES,
    NATURAL_A1,
    Data,
    Row,
    build,
    household_facts,
    overdue,
)

API = "/api/v1/exports/households"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

STATUS = {
    "new": "新识别",
    "in_poverty": "未脱贫",
    "lifted": "已脱贫(享受政策)",
    "lifted_no_support": "已脱贫(不享受政策)",
    "returned": "返贫",
}
ATTRIBUTE = {
    "general": "一般贫困户",
    "dibao": "低保贫困户",
    "tekun": "特困供养贫困户",
    "dibao_tekun": "低保特困户",
}
INDICATOR = {
    "food": "不愁吃",
    "clothing": "不愁穿",
    "education": "义务教育保障",
    "medical": "基本医疗保障",
    "housing": "住房安全保障",
    "water": "饮水安全保障",
}
CHECK = {"ok": "达标", "not_ok": "未达标", None: "未核实"}
MEASURE = {
    "planned": "计划",
    "not_started": "未开工",
    "in_progress": "实施中",
    "done": "已完成",
    "cancelled": "已取消",
}
EXIT_REASON = {  # in the order of the codes
    "no_snapshot": "无收入核算",
    "income_below_line": "人均纯收入未超过贫困线",
    "income_not_stable": "最近两个年度人均纯收入未稳定超过贫困线",
    "indicator_not_ok": "两不愁三保障及饮水安全未达标",
    "indicator_unknown": "两不愁三保障及饮水安全未核实",
    "education_not_secured": "义务教育阶段成员未在校",
    "medical_not_secured": "成员未参加基本医疗保险",
}
FLAG = {
    "income_drop": "收入骤降",
    "below_monitoring_threshold": "低于监测标准",
    "indicator_lost": "保障指标返弹",
    "measure_overdue": "帮扶措施逾期",
    "visit_overdue": "走访逾期",
    "photos_missing": "照片缺失",
}
CST = timezone(timedelta(hours=8))
MONEY = {
    "基期人均纯收入(元)",
    "最新人均纯收入(元)",
    "人均纯收入变化(元)",
    "当年贫困线(元)",
    "当年监测标准(元)",
    "高于贫困线(元)",
    "计划资金(元)",
    "已用资金(元)",
}


def money(fen: int | None) -> str:
    return "" if fen is None else f"{Decimal(fen) / 100:.2f}"


def text(value: Any) -> str:
    return "" if value is None else str(value)


def threshold_year(data: Data, village: str, year: int) -> int | None:
    """The year of the monitoring threshold in force for `year` (as resolve_thresholds finds
    it), when it is an earlier year's carried forward; else None."""
    chain = ["national", *codes.ancestors_of(village), village]
    found = [
        (row.year, chain.index(row.scope))
        for row in data.thresholds
        if row.scope in chain and row.year <= year and row.monitoring_threshold is not None
    ]
    carried = max(found)[0] if found else None
    return None if carried == year else carried


def expected_row(row: Row, data: Data) -> dict[str, str]:
    """The export's row of a household, from its records alone (masked as for a reader
    without pii:read of the generated households: they have no ID numbers nor phones)."""
    h = row.household
    facts = household_facts(row, data)
    latest, baseline = facts.latest, facts.baseline
    change = None if latest is None else latest.per_capita_income - baseline.per_capita_income
    percent = ""
    if change is not None and baseline.per_capita_income:
        value = Decimal(change) * 100 / abs(baseline.per_capita_income)
        percent = str(value.quantize(Decimal("0.1"), ROUND_HALF_UP) + 0)
    reasons = [label for code, label in EXIT_REASON.items() if code in facts.exit_reasons]
    carried = None if latest is None else threshold_year(data, h.village_code, latest.year)
    today = data.now.astimezone(UTC).date()
    recent = data.now - timedelta(days=90)
    funds = [m.funds for m in row.measures if m.funds is not None]
    spent = [m.funds_spent for m in row.measures if m.funds_spent is not None]
    return {
        "户编号": h.number,
        "县代码": h.village_code[:6],
        "村代码": h.village_code,
        "村名": NAMES[h.village_code[:12]],
        "户主姓名": h.head_name,
        "家庭人口": str(sum(1 for m in row.members if m.removed_at is None)),
        "户类别": "建档立卡户",
        "贫困户属性": ATTRIBUTE[h.attribute],
        "贫困户状态": STATUS[h.status],
        "识别年度": str(h.identified_year),
        "基期年度": "" if baseline is None else str(baseline.year),
        "基期人均纯收入(元)": money(baseline and baseline.per_capita_income),
        "最新年度": "" if latest is None else str(latest.year),
        "最新人均纯收入(元)": money(latest and latest.per_capita_income),
        "人均纯收入变化(元)": money(change),
        "人均纯收入变化率(%)": percent,
        "当年贫困线(元)": money(facts.line),
        "当年监测标准(元)": money(facts.monitoring),
        "监测标准沿用年度": text(carried),
        "高于贫困线(元)": money(
            None if latest is None or facts.line is None else latest.per_capita_income - facts.line
        ),
        **{INDICATOR[name]: CHECK[facts.assessments.get(name)] for name in INDICATORS},
        "达到退出标准": "是" if facts.eligible else "否",
        "未达退出标准原因": "" if facts.eligible else "；".join(reasons),
        "帮扶措施数": str(len(row.measures)),
        **{
            f"措施{MEASURE[status]}": str(sum(1 for m in row.measures if m.status == status))
            for status in MEASURE_STATUSES
        },
        "逾期措施": str(sum(1 for m in row.measures if overdue(m, today))),
        "计划资金(元)": money(sum(funds)),
        "已用资金(元)": money(sum(spent)),
        "走访次数": str(len(row.visits)),
        "近90天走访次数": str(sum(1 for v in row.visits if v.visited_at >= recent)),
        "最近走访时间": ""
        if facts.last_visit is None
        else facts.last_visit.astimezone(CST).strftime("%Y-%m-%d %H:%M"),
        "走访逾期": "是" if "visit_overdue" in facts.flags else "否",
        "风险标识": "、".join(FLAG[flag] for flag in FLAGS if flag in facts.flags),
        # No monitoring case in the generated county (see test_monitoring_cases…).
        **dict.fromkeys(("监测对象类别", "监测状态", "识别监测日期", "风险消除日期"), ""),
        "风险消除方式": "",
        "户ID": str(h.id),
    }


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff户编号,".encode())  # BOM, for Excel
    lines = response.content.decode("utf-8-sig").split("\r\n")
    assert lines[-1] == ""  # CRLF after every row (RFC 4180)
    rows = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline=""))
    return [{key: _unwrap(value) for key, value in row.items()} for row in rows]


def _unwrap(value: str) -> str:
    """An identifier of digits comes as ="…", so that Excel keeps it text; the value inside."""
    if value.startswith('="') and value.endswith('"'):
        inner = value[2:-1]
        assert inner.isdigit(), value
        return inner
    return value


async def export(client: httpx.AsyncClient, world: World, who: str, code: str, kind: str) -> Any:
    return await client.get(f"{API}.{kind}", params={"region": code}, headers=world.headers(who))


@pytest.fixture
async def data(session: AsyncSession, world: World) -> Data:
    return await build(session, world, seed=20261123, now=utcnow())


def counted(data: Data, region: str) -> list[Row]:
    rows = [
        row
        for row in data.rows
        if codes.is_within(row.household.village_code, region) and row.household.status != "removed"
    ]
    return sorted(rows, key=lambda r: r.household.number)


async def test_csv_rows_equal_those_computed_from_the_records(
    client: httpx.AsyncClient, world: World, data: Data
) -> None:
    rows = read_csv(await export(client, world, "admin_a", COUNTY_A, "csv"))
    households = counted(data, COUNTY_A)
    assert [row["户ID"] for row in rows] == [str(r.household.id) for r in households]
    generated = {id(r) for r in data.rows[len(world.households) :]}
    compared = 0
    for row, household in zip(rows, households, strict=True):
        if id(household) not in generated:
            continue  # the world's own households: see test_personal_data_is_masked…
        expected = expected_row(household, data)
        assert {key: row[key] for key in expected} == expected, household.household.number
        compared += 1
    # Not vacuous: every status, flag, check and reason shows up in what was compared.
    assert compared > 40
    column = {key: {row[key] for row in rows} for key in rows[0]}
    assert set(STATUS.values()) <= column["贫困户状态"]
    assert set(CHECK.values()) <= column["住房安全保障"]
    assert {"是", "否"} == column["达到退出标准"]
    flags = "、".join(column["风险标识"])
    assert all(label in flags for label in FLAG.values()), flags
    reasons = "；".join(column["未达退出标准原因"])
    assert "无收入核算" in reasons and "人均纯收入未超过贫困线" in reasons
    assert EXIT_REASON["income_not_stable"] in reasons
    assert {"", "2021"} < column["监测标准沿用年度"], column["监测标准沿用年度"]
    assert NATURAL_A1 in column["村代码"] and NAMES[VILLAGE_A1] in column["村名"]


async def test_xlsx_holds_the_cells_of_the_csv_typed(
    client: httpx.AsyncClient, world: World, data: Data
) -> None:
    csv_rows = read_csv(await export(client, world, "admin_a", TOWN_A1, "csv"))
    response = await export(client, world, "admin_a", TOWN_A1, "xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert "content-length" not in response.headers  # streamed as it is written
    assert "attachment" in response.headers["content-disposition"]
    assert "content-encoding" not in response.headers  # zipped already
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = workbook["贫困户"]
    table = list(sheet.iter_rows(values_only=True))
    headers = list(table[0])
    assert headers == list(csv_rows[0])
    assert len(table) - 1 == len(csv_rows) == len(counted(data, TOWN_A1)) > 20
    assert sheet.freeze_panes == "A2"
    for values, csv_row in zip(table[1:], csv_rows, strict=True):
        for header, value in zip(headers, values, strict=True):
            if value is None:
                shown = ""
            elif header in MONEY:
                assert isinstance(value, int | float), (header, value)
                shown = f"{value:.2f}"
            elif header == "人均纯收入变化率(%)":
                shown = f"{value:.1f}"
            elif isinstance(value, datetime):
                shown = value.strftime("%Y-%m-%d %H:%M")
            else:
                shown = str(value)
            assert shown == csv_row[header], (header, value, csv_row[header])
        assert isinstance(values[headers.index("户编号")], str)  # identifiers stay text
        assert isinstance(values[headers.index("家庭人口")], int)


async def test_personal_data_is_masked_without_pii_read(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    # The world's household a1 has a head with an ID number and a phone.
    response = await export(client, world, "officer_a1", VILLAGE_A1, "csv")
    (row,) = read_csv(response)
    raw = response.content.decode("utf-8-sig")
    # Digits Excel would turn into 3.71522E+15 or lose leading zeros of are ="…" text cells;
    # an ID number with its X is text already.
    for digits in (row["户编号"], row["村代码"], PHONE_A1):
        assert f'"=""{digits}"""' in raw, digits
    assert f",{ID_HEAD_A1}," in raw
    assert (row["户主身份证号"], row["联系电话"]) == (ID_HEAD_A1, PHONE_A1)
    assert row["户主姓名"] == "张建国" and row["家庭人口"] == "3"
    for kind in ("csv", "xlsx"):
        response = await export(client, world, "secretary_a1", VILLAGE_A1, kind)
        assert response.status_code == 200
        raw = response.content
        if kind == "xlsx":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                raw = b"".join(archive.read(name) for name in archive.namelist())
        for secret in (ID_HEAD_A1, PHONE_A1, ID_HEAD_A1[6:14], PHONE_A1[3:7]):
            assert secret.encode() not in raw, (kind, secret)
    (masked,) = read_csv(await export(client, world, "secretary_a1", VILLAGE_A1, "csv"))
    assert masked["户主身份证号"] == "110105********002X"
    assert masked["联系电话"] == "138****1234"


async def test_formulas_in_names_stay_text(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    name = '=HYPERLINK("http://evil.example","点击")'
    await session.execute(
        update(Household).where(Household.village_code == VILLAGE_A1).values(head_name=name)
    )
    (row,) = read_csv(await export(client, world, "admin_a", VILLAGE_A1, "csv"))
    assert row["户主姓名"] == "'" + name  # a leading apostrophe: no formula in a spreadsheet
    response = await export(client, world, "admin_a", VILLAGE_A1, "xlsx")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "HYPERLINK" in sheet  # a string cell, never a formula


async def test_only_the_callers_regions(client: httpx.AsyncClient, world: World) -> None:
    for kind in ("csv", "xlsx"):
        # Another village's officer, another county's admin, the county above a village.
        for who, code in (
            ("officer_a2", VILLAGE_A1),
            ("admin_b", COUNTY_A),
            ("officer_a1", COUNTY_A),
            ("admin_a", COUNTY_B),
        ):
            response = await export(client, world, who, code, kind)
            problem(response, 404, "region_not_found")
        rows = await export(client, world, "officer_a2", VILLAGE_A2, kind)
        assert rows.status_code == 200
    (row,) = read_csv(await export(client, world, "officer_a2", VILLAGE_A2, "csv"))
    assert row["村代码"] == VILLAGE_A2
    county_b = read_csv(await export(client, world, "admin_b", COUNTY_B, "csv"))
    assert county_b and {row["村代码"] for row in county_b} == {VILLAGE_B1}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "query.region"),
        ({"region": "37152210120"}, "query.region"),  # not a division code
        ({"region": NATURAL_A1}, "query.region"),  # progress is for county, town, village
        ({"region": "371500000000"}, "query.region"),  # a prefecture
    ],
)
async def test_bad_region_is_422_naming_it(
    client: httpx.AsyncClient, world: World, params: dict[str, str], field: str
) -> None:
    for kind in ("csv", "xlsx"):
        response = await client.get(
            f"{API}.{kind}", params=params, headers=world.headers("admin_a")
        )
        problem(response, 422, "validation_failed", field)


async def test_pages_join_into_the_same_rows(
    client: httpx.AsyncClient, world: World, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = read_csv(await export(client, world, "admin_a", COUNTY_A, "csv"))
    assert len(whole) > 30
    for size in (1, 7, len(whole), len(whole) - 1):  # the last page full, then short
        monkeypatch.setattr(export_service, "PAGE_ROWS", size)
        assert read_csv(await export(client, world, "admin_a", COUNTY_A, "csv")) == whole, size
