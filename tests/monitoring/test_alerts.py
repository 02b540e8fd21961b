"""Department alerts (issue 14, item 6; acceptance 3): import, list, masking, verification."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.base import utcnow
from app.core.config import get_settings
from app.households import id_numbers
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.sync.models import Change
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    ID_HEAD_A1,
    ID_SPOUSE_A1,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    World,
    make_household,
    make_id_number,
)

URL = "/api/v1/monitoring/alerts"
HEADER = "department,id_number,kind,amount,occurred_on,note"
ID_A2 = make_id_number(11, "19650304")  # the head of household a2 (village A2)
ID_B1 = make_id_number(21, "19700512", "371523")  # the head of household b1 (county B)
ID_NOBODY = make_id_number(99, "19900101")  # valid, held by no member


def csv_bytes(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join((header, *lines)) + "\r\n").encode(encoding)


async def upload(
    client: httpx.AsyncClient,
    world: World,
    content: bytes,
    *,
    filename: str = "alerts.csv",
    who: str = "admin_a",
    county: str | None = None,
) -> httpx.Response:
    return await client.post(
        f"{URL}/import",
        files={"file": (filename, content, "application/octet-stream")},
        data={"county": county} if county else {},
        headers=world.headers(who),
    )


async def stored(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(MonitoringAlert)) or 0)


def rejections(report: dict[str, Any]) -> set[tuple[int, str]]:
    return {(r["row"], r["field"]) for r in report["rejected_rows"]}


MIXED = csv_bytes(
    f"medical_insurance,{ID_SPOUSE_A1},large_medical_expense,28650.5,2026-03-02,住院 13805351234",
    f"civil_affairs,{ID_A2},assistance_granted,,2026-01-15,",
    f"education,{ID_NOBODY},dropout,,2026-02-01,",  # unmatched: nobody holds it
    f"civil_affairs,{ID_B1},death,,2026-02-01,",  # unmatched: a member of county B
    f"medical_insurance,{ID_SPOUSE_A1},large_medical_expense,28650.50,2026-03-02,again",  # dup
    f"police,{ID_HEAD_A1},death,,2026-02-01,",  # row 7: unknown department
    "civil_affairs,110105194912310021,death,,2026-02-01,",  # row 8: wrong check character
    f'medical_insurance,{ID_HEAD_A1},large_medical_expense,"1,200",2026-02-01,',  # row 9
    f"housing,{ID_HEAD_A1},dilapidated_house,,2099-01-01,",  # row 10: in the future
    f"housing,{ID_HEAD_A1},collapse,,2026-02-30,",  # row 11: kind and date both wrong
    ",,,,,",  # blank: skipped, not counted
)


async def test_import_reports_each_row_and_a_second_import_adds_nothing(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    first = await upload(client, world, MIXED)

    assert first.status_code == 200, first.text
    report = first.json()
    assert report["county_code"] == COUNTY_A
    assert (report["rows"], report["matched"], report["unmatched"]) == (10, 2, 2)
    assert (report["duplicate"], report["rejected"]) == (1, 5)
    assert rejections(report) == {
        (7, "department"),
        (8, "id_number"),
        (9, "amount"),
        (10, "occurred_on"),
        (11, "kind"),
        (11, "occurred_on"),
    }
    reasons = {(r["row"], r["field"]): r["reason"] for r in report["rejected_rows"]}
    assert "check character" in reasons[(8, "id_number")]
    assert "future" in reasons[(10, "occurred_on")]
    assert await stored(session) == 2

    again = await upload(client, world, MIXED)

    assert again.status_code == 200, again.text
    second = again.json()
    assert (second["matched"], second["duplicate"], second["unmatched"]) == (0, 3, 2)
    assert second["rejected"] == 5
    assert await stored(session) == 2

    alerts = (await session.scalars(select(MonitoringAlert))).all()
    spouse = next(a for a in alerts if a.kind == "large_medical_expense")
    household = world.households["a1"]
    assert (spouse.household_id, spouse.village_code, spouse.county_code) == (
        household.id,
        VILLAGE_A1,
        COUNTY_A,
    )
    assert (spouse.amount, spouse.occurred_on, spouse.status) == (
        2_865_050,
        date(2026, 3, 2),
        "open",
    )
    assert spouse.imported_by == world.users["admin_a"].id
    assert spouse.id_number_hash == id_numbers.search_hash(
        ID_SPOUSE_A1, key=get_settings().pii_hash_key
    )
    # Each new alert is in its village's change feed, once.
    feed = (
        await session.execute(
            select(col(Change.entity_id), col(Change.region_code), col(Change.version)).where(
                col(Change.entity_type) == "monitoring_alert"
            )
        )
    ).all()
    assert sorted(feed) == sorted((a.id, a.village_code, 1) for a in alerts)


async def test_files_from_chinese_office_software_are_read(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    # GB18030 (Excel/WPS "CSV" on Chinese Windows), Chinese labels for the codes, columns in
    # another order plus one the import does not know.
    gbk = csv_bytes(
        f"1,2026-02-03,民政部门,{ID_HEAD_A1},纳入社会救助,低保新增",
        header="序号,occurred_on,Department,ID_Number,kind,note",
        encoding="gb18030",
    )
    response = await upload(client, world, gbk)
    assert response.status_code == 200, response.text
    assert response.json()["matched"] == 1

    # UTF-8 with BOM, tab-separated; the 15-digit form of a number matches its 18-digit holder.
    old_form = ID_A2[:6] + ID_A2[8:17]
    bom = "\ufeff" + "\t".join(HEADER.split(",")) + "\n"
    bom += f"human_resources\t{old_form}\tjob_loss\t\t2026/2/9\t厂里裁员\n"
    response = await upload(client, world, bom.encode("utf-8"))
    assert response.status_code == 200, response.text
    assert (response.json()["matched"], response.json()["rejected"]) == (1, 0)
    assert await stored(session) == 2


async def test_xlsx_import_reads_the_first_sheet(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(["disabled_persons", ID_HEAD_A1, "disability", None, date(2026, 1, 20), "二级"])
    sheet.append(
        ["medical_insurance", ID_SPOUSE_A1, "large_medical_expense", 12000.5, "2026-03-01"]
    )
    sheet.append([])  # an empty row: skipped, numbering unchanged
    # A number typed as a number: Excel kept 15 significant digits, the row cannot be trusted.
    sheet.append(["education", float(ID_A2), "dropout", None, date(2026, 1, 2)])
    buffer = io.BytesIO()
    book.save(buffer)

    response = await upload(client, world, buffer.getvalue(), filename="医保.xlsx")

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["matched"], report["rejected"]) == (3, 2, 1)
    assert rejections(report) == {(5, "id_number")}
    amounts = set((await session.scalars(select(col(MonitoringAlert.amount)))).all())
    assert amounts == {None, 1_200_050}


@pytest.mark.parametrize(
    ("content", "filename", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "photo.png", "not_csv_or_xlsx"),
        (csv_bytes("civil_affairs,death,,2026-02-01,", header=HEADER.replace("id_number,", "")),
         "alerts.csv", "missing_columns"),
        (csv_bytes(f"civil_affairs,{ID_HEAD_A1},death,,2026-02-01,") + b"\xff\x80\xff\n",
         "alerts.csv", "encoding"),
        (b"", "alerts.csv", "no_header"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "alerts.xls", "not_csv_or_xlsx"),
        ("zip", "alerts.xlsx", "bad_xlsx"),
    ],
)  # fmt: skip
async def test_an_unreadable_file_imports_nothing(
    client: httpx.AsyncClient,
    world: World,
    session: AsyncSession,
    content: bytes | str,
    filename: str,
    reason: str,
) -> None:
    if content == "zip":  # a zip that is no workbook
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
        content = buffer.getvalue()
    assert isinstance(content, bytes)

    response = await upload(client, world, content, filename=filename)

    body = problem(response, 422, "alert_file_unreadable")
    assert body["reason"] == reason
    assert await stored(session) == 0


async def test_a_file_over_the_limit_imports_nothing(
    client: httpx.AsyncClient,
    world: World,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "alert_import_max_bytes", 2048)
    rows = [f"civil_affairs,{ID_HEAD_A1},death,,2026-02-{d:02d},{'x' * 40}" for d in range(1, 29)]

    response = await upload(client, world, csv_bytes(*rows))

    body = problem(response, 422, "alert_file_unreadable")
    assert body["reason"] == "too_large" and body["limit_bytes"] == 2048
    assert await stored(session) == 0


async def test_only_a_county_admin_imports_and_only_for_their_county(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    line = f"civil_affairs,{ID_HEAD_A1},death,,2026-02-01,"
    for who in ("officer_a1", "secretary_a1", "town_a1"):
        problem(await upload(client, world, csv_bytes(line), who=who), 403, "forbidden")
    problem(await upload(client, world, csv_bytes(line), who=None), 401, "not_authenticated")
    problem(await upload(client, world, csv_bytes(line), county=COUNTY_B), 403, "forbidden")
    problem(
        await upload(client, world, csv_bytes(line), county=VILLAGE_A1),
        422,
        "validation_failed",
        "body.county",
    )
    # County B's admin: the same ID number is no member of theirs.
    response = await upload(client, world, csv_bytes(line), who="admin_b")
    assert response.status_code == 200, response.text
    assert (response.json()["matched"], response.json()["unmatched"]) == (0, 1)
    assert await stored(session) == 0


async def test_removed_members_and_other_counties_do_not_match(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    from app.households.models import Member

    spouse = await session.scalar(
        select(Member).where(
            col(Member.household_id) == world.households["a1"].id, col(Member.name) == "李秀英"
        )
    )
    assert spouse is not None
    spouse.removed_at, spouse.removed_reason = utcnow(), "married_out"
    await session.flush()
    ordinary = await make_household(
        session,
        village=VILLAGE_A2,
        origin="ordinary",
        members=[
            {"name": "孙桂兰", "id_number": make_id_number(7, "19580808"), "relation": "head"}
        ],
    )

    response = await upload(
        client,
        world,
        csv_bytes(
            f"civil_affairs,{ID_SPOUSE_A1},death,,2026-02-01,",
            f"civil_affairs,{make_id_number(7, '19580808')},death,,2026-02-01,",
            f"civil_affairs,{ID_B1},death,,2026-02-01,",
        ),
    )

    assert (response.json()["matched"], response.json()["unmatched"]) == (1, 2)
    alert = await session.scalar(select(MonitoringAlert))
    assert alert is not None and alert.household_id == ordinary.id


async def _import_sample(client: httpx.AsyncClient, world: World) -> None:
    response = await upload(
        client,
        world,
        csv_bytes(
            f"medical_insurance,{ID_SPOUSE_A1},large_medical_expense,28650.50,2026-03-02,"
            f'"住院, 家属电话 13805351234, 身份证 {ID_SPOUSE_A1}"',
            f"civil_affairs,{ID_HEAD_A1},assistance_granted,,2026-01-15,低保",
            f"human_resources,{ID_A2},job_loss,,2026-02-09,",
        ),
    )
    assert response.json()["matched"] == 3, response.text


async def listed(
    client: httpx.AsyncClient, world: World, who: str, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | {"limit": 1} | ({"cursor": cursor} if cursor else {})
        response = await client.get(URL, params=query, headers=world.headers(who))
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def test_each_caller_lists_the_alerts_of_their_villages(
    client: httpx.AsyncClient, world: World
) -> None:
    await _import_sample(client, world)

    def kinds(items: list[dict[str, Any]]) -> set[str]:
        return {item["kind"] for item in items}

    a1 = {"large_medical_expense", "assistance_granted"}
    assert kinds(await listed(client, world, "officer_a1")) == a1
    assert kinds(await listed(client, world, "secretary_a1")) == a1
    assert kinds(await listed(client, world, "officer_a2")) == {"job_loss"}
    assert kinds(await listed(client, world, "town_a1")) == a1 | {"job_loss"}
    everything = await listed(client, world, "admin_a")
    assert len(everything) == 3 and len({item["id"] for item in everything}) == 3
    assert await listed(client, world, "admin_b") == []

    assert kinds(await listed(client, world, "admin_a", region=VILLAGE_A2)) == {"job_loss"}
    assert kinds(await listed(client, world, "town_a1", region=TOWN_A1, kind="job_loss")) == {
        "job_loss"
    }
    assert kinds(await listed(client, world, "admin_a", department="civil_affairs")) == {
        "assistance_granted"
    }
    assert await listed(client, world, "admin_a", status="verified") == []
    outside = await client.get(
        URL, params={"region": VILLAGE_A2}, headers=world.headers("officer_a1")
    )
    problem(outside, 404, "not_found")
    bad = await client.get(URL, params={"status": "closed"}, headers=world.headers("admin_a"))
    problem(bad, 422, "validation_failed")

    item = next(i for i in everything if i["kind"] == "large_medical_expense")
    assert item["household_id"] == str(world.households["a1"].id)
    assert (item["member_name"], item["amount"], item["department"]) == (
        "李秀英",
        "28650.50",
        "medical_insurance",
    )
    one = await client.get(f"{URL}/{item['id']}", headers=world.headers("officer_a1"))
    assert one.status_code == 200 and one.json() == item
    problem(
        await client.get(f"{URL}/{item['id']}", headers=world.headers("officer_a2")),
        404,
        "alert_not_found",
    )
    problem(
        await client.get(f"{URL}/{uuid.uuid4()}", headers=world.headers("admin_a")),
        404,
        "alert_not_found",
    )


async def test_id_numbers_are_masked_without_pii_read(
    client: httpx.AsyncClient, world: World
) -> None:
    await _import_sample(client, world)

    def medical(items: list[dict[str, Any]]) -> dict[str, Any]:
        return next(i for i in items if i["kind"] == "large_medical_expense")

    full = medical(await listed(client, world, "officer_a1"))
    assert full["member_id_number"] == ID_SPOUSE_A1 and not full["pii_masked"]
    assert "13805351234" in full["note"] and ID_SPOUSE_A1 in full["note"]

    masked = medical(await listed(client, world, "secretary_a1"))  # no pii:read
    assert masked["member_id_number"] == id_numbers.mask(ID_SPOUSE_A1) and masked["pii_masked"]
    assert "13805351234" not in masked["note"] and ID_SPOUSE_A1 not in masked["note"]
    assert "138****1234" in masked["note"] and id_numbers.mask(ID_SPOUSE_A1) in masked["note"]
    one = await client.get(f"{URL}/{masked['id']}", headers=world.headers("secretary_a1"))
    assert one.json()["member_id_number"] == id_numbers.mask(ID_SPOUSE_A1)


async def _case(session: AsyncSession, world: World, household: str) -> uuid.UUID:
    """A monitoring case of the household, written as the phone's PUT would store it."""
    officer = world.users["officer_a1"].id
    case = MonitoringCase(
        id=uuid.uuid4(),
        household_id=world.households[household].id,
        revision=1,
        content_hash="0" * 64,
        author_id=officer,
        updated_by=officer,
        category="sudden_hardship",
        risk_types=["illness"],
        found_via="department_alert",
        found_on=date(2026, 3, 5),
    )
    session.add(case)
    await session.flush()
    return case.id


async def test_verifying_an_alert(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await _import_sample(client, world)
    items = await listed(client, world, "admin_a")
    medical = next(i for i in items if i["kind"] == "large_medical_expense")
    welfare = next(i for i in items if i["kind"] == "assistance_granted")
    job = next(i for i in items if i["kind"] == "job_loss")

    async def verify(alert: dict[str, Any], who: str, **body: Any) -> httpx.Response:
        return await client.post(
            f"{URL}/{alert['id']}/verify", json=body, headers=world.headers(who)
        )

    problem(await verify(medical, "officer_a2", outcome="no_risk"), 404, "alert_not_found")
    problem(await verify(medical, "admin_b", outcome="no_risk"), 404, "alert_not_found")
    problem(await verify(medical, "officer_a1", outcome="case_opened"), 422, "validation_failed")
    other_case = await _case(session, world, "a2")
    problem(
        await verify(medical, "officer_a1", outcome="case_opened", case_id=str(other_case)),
        422,
        "validation_failed",
        "body.case_id",
    )
    problem(
        await verify(medical, "officer_a1", outcome="no_risk", case_id=str(other_case)),
        422,
        "validation_failed",
    )

    case_id = await _case(session, world, "a1")
    done = await verify(medical, "officer_a1", outcome="case_opened", case_id=str(case_id))
    assert done.status_code == 200, done.text
    verified = done.json()
    assert (verified["status"], verified["outcome"], verified["case_id"]) == (
        "verified",
        "case_opened",
        str(case_id),
    )
    assert verified["verified_by"] == str(world.users["officer_a1"].id)
    assert verified["verified_at"] is not None and verified["revision"] == 2

    twice = await verify(medical, "admin_a", outcome="no_risk")
    problem(twice, 409, "alert_already_verified")

    # The town's staff and the village's first secretary verify too; notes are kept.
    town = await verify(job, "town_a1", outcome="data_corrected", note="已返岗")
    assert town.status_code == 200 and town.json()["verify_note"] == "已返岗"
    secretary = await verify(welfare, "secretary_a1", outcome="no_risk")
    assert secretary.status_code == 200, secretary.text

    assert {i["id"] for i in await listed(client, world, "admin_a", status="verified")} == {
        medical["id"],
        welfare["id"],
        job["id"],
    }
    # Each change is the alert's next version in its village's feed.
    versions = dict(
        (
            await session.execute(
                select(col(Change.entity_id), col(Change.version)).where(
                    col(Change.entity_type) == "monitoring_alert"
                )
            )
        ).all()
    )
    assert versions[uuid.UUID(medical["id"])] == 2


async def test_a_dry_run_reports_what_importing_would_do_and_stores_nothing(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    preview = await client.post(
        f"{URL}/import",
        files={"file": ("alerts.csv", MIXED, "application/octet-stream")},
        data={"dry_run": "true"},
        headers=world.headers("admin_a"),
    )

    assert preview.status_code == 200, preview.text
    report = preview.json()
    assert report["dry_run"] is True
    assert (report["matched"], report["unmatched"], report["rejected"]) == (2, 2, 5)
    assert await stored(session) == 0

    applied = (await upload(client, world, MIXED)).json()
    assert applied["dry_run"] is False
    assert {k: v for k, v in applied.items() if k != "dry_run"} == {
        k: v for k, v in report.items() if k != "dry_run"
    }
    assert await stored(session) == 2
