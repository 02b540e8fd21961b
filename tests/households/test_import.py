"""Importing households from the national register's .xlsx: dry run, all-or-nothing, report."""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.config import get_settings
from app.households.models import Household, Member
from app.sync.models import Change
from tests.assertions import problem
from tests.builders import (
    ID_HEAD_A1,
    PASSWORD,
    VILLAGE_A1,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_id_number,
)

URL = "/api/v1/households/imports"
# The national layout, with columns the record has no place for (县, 民族).
HEADER = [
    "户编号",
    "县",
    "行政区划代码",
    "自然村/组",
    "户主姓名",
    "姓名",
    "证件号码",
    "与户主关系",
    "联系电话",
    "贫困户属性",
    "脱贫状态",
    "首次识别时间",
    "计划脱贫年度",
    "脱贫年度",
    "主要致贫原因",
    "次要致贫原因",
    "民族",
    "健康状况",
    "劳动技能",
    "在校生状况",
]
HH_1, HH_2 = "3715221012019001", "3715221022019002"
ID_1H, ID_1S, ID_1C = (
    make_id_number(301, "19700101"),
    make_id_number(302, "19720202"),
    make_id_number(303, "20100303"),
)
ID_2H = make_id_number(305, "19550505")


def xlsx(rows: list[list[Any]], *, header: list[str] = HEADER, above: int = 0) -> bytes:
    """A workbook whose first sheet holds `above` title rows, the header and the rows."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for _ in range(above):
        sheet.append(["莘县建档立卡贫困户信息表"])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def person(
    number: str, village: str, name: str, id_number: str | None, relation: str, **kw: Any
) -> list[Any]:
    """A row of HEADER: the household's cells filled (as the national export repeats them)."""
    cells = {
        "户编号": number,
        "县": "莘县",
        "行政区划代码": village,
        "自然村/组": "三组",
        "姓名": name,
        "证件号码": id_number,
        "与户主关系": relation,
        "联系电话": "13805350001",
        "贫困户属性": "低保贫困户",
        "脱贫状态": "已脱贫(享受政策)",
        "首次识别时间": "2014-10-01",
        "计划脱贫年度": 2018,
        "脱贫年度": 2019,
        "主要致贫原因": "因病",
        "次要致贫原因": "缺劳力、缺资金",
        "民族": "汉族",
        "健康状况": "健康",
        "劳动技能": "普通劳动力",
        "在校生状况": "非在校生",
    } | kw
    return [cells.get(h) for h in HEADER]


VALID = [
    person(HH_1, VILLAGE_A1, "刘大海", ID_1H, "户主", 户主姓名="刘大海", 健康状况="长期慢性病"),
    person(HH_1, VILLAGE_A1, "陈桂兰", ID_1S, "配偶"),
    person(HH_1, VILLAGE_A1, "刘小宝", ID_1C, "之子", 在校生状况="七年级", 劳动技能="无劳动力"),
    person(HH_2, VILLAGE_A3, "孙有才", ID_2H, "户主", 贫困户属性="一般贫困户"),
]


async def upload(
    client: httpx.AsyncClient,
    world: World | None,
    content: bytes,
    *,
    dry_run: bool | None = None,
    who: str = "admin_a",
    filename: str = "建档立卡户.xlsx",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    params = {} if dry_run is None else {"dry_run": str(dry_run).lower()}
    return await client.post(
        URL,
        params=params,
        files={"file": (filename, content, "application/octet-stream")},
        headers=headers if headers is not None else world.headers(who) if world else {},
    )


async def households_with(session: AsyncSession, *numbers: str) -> int:
    stmt = select(func.count()).select_from(Household).where(col(Household.number).in_(numbers))
    return int(await session.scalar(stmt) or 0)


def errors_of(report: dict[str, Any]) -> dict[int, set[tuple[str, str]]]:
    return {r["row"]: {(e["column"], e["code"]) for e in r["errors"]} for r in report["rows"]}


async def test_a_dry_run_reports_each_row_and_the_import_creates_the_households(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    dry = await upload(client, world, xlsx(VALID))

    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert (report["dry_run"], report["applied"]) == (True, False)
    assert report["totals"] == {
        "rows": 4,
        "households": 2,
        "members": 4,
        "create": 2,
        "exists": 0,
        "error_households": 0,
        "error_rows": 0,
    }
    assert [(r["row"], r["number"], r["outcome"]) for r in report["rows"]] == [
        (2, HH_1, "create"),
        (3, HH_1, "create"),
        (4, HH_1, "create"),
        (5, HH_2, "create"),
    ]
    assert report["rows"][0]["id_number"] == ID_1H  # the county admin may see it
    assert report["ignored_columns"] == ["县", "民族"]
    assert report["columns"]["证件号码"] == "id_number"
    assert await households_with(session, HH_1, HH_2) == 0

    applied = await upload(client, world, xlsx(VALID), dry_run=False)

    assert applied.status_code == 201, applied.text
    report = applied.json()
    assert (report["dry_run"], report["applied"], report["totals"]["create"]) == (False, True, 2)
    household_id = report["rows"][0]["household_id"]
    listed = await client.get(
        f"/api/v1/households/{household_id}", headers=world.headers("admin_a")
    )
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["number"], body["village_code"], body["head_name"]) == (HH_1, VILLAGE_A1, "刘大海")
    assert (body["attribute"], body["status"], body["main_cause"]) == ("dibao", "lifted", "illness")
    assert body["other_causes"] == ["lack_labour", "lack_capital"]
    assert (body["identified_year"], body["planned_exit_year"], body["exit_year"]) == (
        2014,
        2018,
        2019,
    )
    assert (body["group_name"], body["phone"], body["household_size"]) == ("三组", "13805350001", 3)
    members = {m["name"]: m for m in body["members"]}
    assert members["刘大海"]["relation"] == "head" and members["刘大海"]["health"] == "chronic"
    assert members["陈桂兰"]["relation"] == "spouse"
    child = members["刘小宝"]
    assert (child["relation"], child["in_school"], child["labour"]) == ("child", True, "none")
    # As for a household created through the API: in its village's change feed.
    feed = await session.scalar(
        select(func.count())
        .select_from(Change)
        .where(
            col(Change.household_id) == uuid.UUID(body["id"]),
            col(Change.region_code) == VILLAGE_A1,
        )
    )
    assert feed
    # The officer of the village sees it.
    officer = await client.get(f"/api/v1/households?q={HH_1}", headers=world.headers("officer_a1"))
    assert [h["number"] for h in officer.json()["items"]] == [HH_1]

    again = await upload(client, world, xlsx(VALID), dry_run=False)

    assert again.status_code == 201, again.text
    assert {r["outcome"] for r in again.json()["rows"]} == {"exists"}
    assert again.json()["totals"]["exists"] == 2
    assert await households_with(session, HH_1, HH_2) == 2


async def test_bad_rows_are_reported_by_column_and_nothing_is_written(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    bad_check = ID_1H[:-1] + ("0" if ID_1H[-1] != "0" else "1")
    rows = [
        person(HH_1, VILLAGE_A1, "刘大海", bad_check, "户主"),  # 2: check digit
        person("3715221012019003", "371522101299", "周明", make_id_number(311), "01"),  # 3
        person("3715231012019004", VILLAGE_B1, "吴强", make_id_number(312), "01"),  # 4
        person("3715221012019005", VILLAGE_A1, "郑华", make_id_number(313), "配偶"),  # 5: no head
        person("3715221012019006", VILLAGE_A1, "钱进", ID_HEAD_A1, "户主", 脱贫状态="已脱"),  # 6
        person(HH_2, VILLAGE_A3, "孙有才", ID_2H, "户主", 贫困户属性="富裕户"),  # 7: unknown code
        person("3715221012019007", VILLAGE_A3, "冯丽", make_id_number(314), "户主"),  # 8: valid
    ]

    response = await upload(client, world, xlsx(rows), dry_run=False)

    body = problem(response, 422, "household_import_invalid")
    report = body["report"]
    assert report["applied"] is False
    assert errors_of(report) == {
        2: {("证件号码", "invalid_id_number")},
        3: {("行政区划代码", "unknown_village")},
        4: {("行政区划代码", "outside_region")},
        5: {("与户主关系", "no_head")},
        6: {("证件号码", "id_number_registered"), ("脱贫状态", "unknown_code")},
        7: {("贫困户属性", "unknown_code")},
        8: set(),
    }
    messages = {r["row"]: r["errors"][0]["message"] for r in report["rows"] if r["errors"]}
    assert messages[2] == "证件号码校验位错误（GB 11643）"
    assert "不在您管辖的县内" in messages[4]
    assert "没有户主" in messages[5]
    assert "富裕户" in messages[7] and "低保贫困户" in messages[7]
    assert [r["outcome"] for r in report["rows"]] == ["error"] * 6 + ["create"]
    assert report["totals"]["error_households"] == 6 and report["totals"]["create"] == 1
    assert await households_with(session, "3715221012019007") == 0
    assert await session.scalar(select(func.count()).select_from(Household)) == 3  # the world's

    # The same in a dry run: 200 with the report.
    dry = await upload(client, world, xlsx(rows))
    assert dry.status_code == 200 and errors_of(dry.json()) == errors_of(report)


async def test_household_rows_must_agree_and_have_one_head(
    client: httpx.AsyncClient, world: World
) -> None:
    rows = [
        person(HH_1, VILLAGE_A1, "刘大海", ID_1H, "户主", 户主姓名="刘大江"),  # 2: name differs
        person(HH_1, VILLAGE_A1, "陈桂兰", ID_1S, "户主", 贫困户属性="一般贫困户"),  # 3
        person(HH_1, VILLAGE_A1, "刘小宝", ID_1H, "之子"),  # 4: the head's ID number again
    ]

    report = (await upload(client, world, xlsx(rows))).json()

    assert errors_of(report) == {
        2: {("户主姓名", "head_name_mismatch")},
        3: {("与户主关系", "several_heads"), ("贫困户属性", "inconsistent")},
        4: {("证件号码", "duplicate_id_number")},
    }


async def test_header_variants_of_national_exports(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    # A title row above the header; other header spellings and full-width brackets; the village
    # by name under its town; national codes; household cells blank after the first row.
    header = [
        "乡镇",
        "行政村",
        "户编号",
        "成员姓名",
        "证件号码（身份证号）",
        "与户主关系",
        "贫困户属性",
        "户类型",
        "首次识别年度",
        "致贫原因",
        "是否参加城乡居民基本医疗保险",
        "务工区域",
    ]
    rows = [
        ["燕店镇", "王庄村", HH_1, "刘大海", ID_1H, "01", "低保户", "0", 2016, 1, "是", "省内"],
        [None, None, HH_1, "陈桂兰", ID_1S[:6] + ID_1S[8:17], 2, None, None, None, None, "否"],
        ["观城镇", "前营村", HH_2, "孙有才", ID_2H, "01", "一般", "4", "2015年", "7", "是"],
    ]

    response = await upload(client, world, xlsx(rows, header=header, above=2), dry_run=False)

    assert response.status_code == 201, response.text
    report = response.json()
    assert [r["row"] for r in report["rows"]] == [4, 5, 6]
    assert report["ignored_columns"] == ["务工区域"]
    created = {
        h.number: h
        for h in await session.scalars(
            select(Household).where(col(Household.number).in_([HH_1, HH_2]))
        )
    }
    first, second = created[HH_1], created[HH_2]
    assert (first.village_code, first.attribute, first.status) == (
        VILLAGE_A1,
        "dibao",
        "in_poverty",
    )
    assert (first.identified_year, first.main_cause, first.head_name) == (2016, "illness", "刘大海")
    assert (second.village_code, second.status, second.main_cause) == (
        VILLAGE_A3,
        "lifted_no_support",
        "lack_skills",
    )
    members = (await session.scalars(select(Member).where(Member.household_id == first.id))).all()
    by_name = {m.name: m for m in members}
    assert by_name["陈桂兰"].id_number == ID_1S  # the 15-digit form, upgraded
    assert (by_name["刘大海"].medical_insurance, by_name["陈桂兰"].medical_insurance) == (
        True,
        False,
    )


async def test_village_names_and_numbers_stored_as_numbers(
    client: httpx.AsyncClient, world: World
) -> None:
    header = [
        "户编号",
        "乡镇",
        "行政村",
        "姓名",
        "身份证号",
        "与户主关系",
        "贫困户属性",
        "首次识别时间",
        "主要致贫原因",
    ]
    rows = [
        [HH_1, None, "王庄村", "刘大海", float(ID_1H[:17] + "0"), "户主", "低保", 2016, "因病"],
        [HH_2, "观城镇", "王庄村", "孙有才", ID_2H, "户主", "低保", 2016, "因病"],
        ["3715221012019008", None, "南关村", "冯丽", None, "户主", "低保", 2016, "因病"],
    ]

    report = (await upload(client, world, xlsx(rows, header=header))).json()

    assert errors_of(report) == {
        2: {("身份证号", "lost_digits")},
        3: {("行政村", "unknown_village")},  # 王庄村 is no village of 观城镇
        4: {("行政村", "unknown_village")},  # 南关村 is county B's
    }


async def test_only_a_county_admin_imports_into_their_own_county(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    content = xlsx(VALID)
    for who in ("officer_a1", "secretary_a1", "town_a1"):
        problem(await upload(client, world, content, who=who, dry_run=False), 403, "forbidden")
    problem(await upload(client, None, content, dry_run=False), 401, "not_authenticated")

    other = await upload(client, world, content, who="admin_b", dry_run=False)

    report = problem(other, 422, "household_import_invalid")["report"]
    assert {e["code"] for r in report["rows"] for e in r["errors"]} == {"outside_region"}
    # Not theirs to see: masked.
    assert report["rows"][0]["id_number"] == ID_1H[:6] + "********" + ID_1H[-4:]
    assert await households_with(session, HH_1, HH_2) == 0


async def test_id_numbers_are_masked_without_pii_read(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": world.users["admin_a"].username,
            "password": PASSWORD,
            "scope": "households:read households:write",
        },
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    response = await upload(client, None, xlsx(VALID), headers=headers)

    assert response.status_code == 200, response.text
    shown = [r["id_number"] for r in response.json()["rows"]]
    assert shown[0] == ID_1H[:6] + "********" + ID_1H[-4:]
    assert ID_1H not in response.text


def _zip_without_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "filename", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "photo.png", "not_xlsx"),
        ("户编号,姓名\n1,2\n".encode(), "households.csv", "not_xlsx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "households.xls", "not_xlsx"),
        (b"", "households.xlsx", "bad_xlsx"),
        (_zip_without_workbook(), "households.xlsx", "bad_xlsx"),
        (xlsx([["x"]], header=["姓名", "证件号码"]), "households.xlsx", "no_header"),
        (xlsx([], header=["户编号", "姓名"]), "households.xlsx", "missing_columns"),
    ],
)
async def test_a_file_that_is_no_register_writes_nothing(
    client: httpx.AsyncClient, world: World, content: bytes, filename: str, reason: str
) -> None:
    response = await upload(client, world, content, filename=filename, dry_run=False)

    body = problem(response, 422, "household_file_unreadable")
    assert body["reason"] == reason
    assert body["message"]  # 简体中文, for the people who fix the file
    if reason == "missing_columns":
        assert "与户主关系" in body["missing_columns"]


async def test_limits_answer_413(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "household_import_max_rows", 3)
    body = problem(await upload(client, world, xlsx(VALID)), 413, "household_file_too_large")
    assert (body["reason"], body["limit_rows"]) == ("rows", 3)

    monkeypatch.setattr(get_settings(), "household_import_max_bytes", 2048)
    body = problem(await upload(client, world, xlsx(VALID)), 413, "household_file_too_large")
    assert (body["reason"], body["limit_bytes"]) == ("bytes", 2048)


async def test_dry_run_as_a_form_field(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        URL,
        files={"file": ("h.xlsx", xlsx(VALID), "application/octet-stream")},
        data={"dry_run": "false"},
        headers=world.headers("admin_a"),
    )
    assert response.status_code == 201, response.text

    clash = await client.post(
        URL,
        params={"dry_run": "true"},
        files={"file": ("h.xlsx", xlsx(VALID), "application/octet-stream")},
        data={"dry_run": "false"},
        headers=world.headers("admin_a"),
    )
    problem(clash, 422, "validation_failed", "query.dry_run")
