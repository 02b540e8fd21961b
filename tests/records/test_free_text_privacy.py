"""Numbers typed into free text are personal data: ID numbers and mobiles masked, a visit's
address left out without pii:read, on every way out; sent back as shown, the stored text stays."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import CLIENT_SCOPES
from app.households.privacy import scrub
from app.records.models import Measure, Visit
from app.sync.conflicts import masked
from tests.builders import VILLAGE_A1, World
from tests.clients.builders import bearer_for, make_client
from tests.records.bodies import API, ago, measure_body, put, visit_body
from tests.sync.feed_helpers import Replica
from tests.sync.helpers import BATCHES, batch, record

ID_NUMBER = "37152219800101123X"
PHONE = "13805351234"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
ADDRESS = "燕店镇王庄村三组18号"
FINDINGS = f"户主电话{PHONE}, 身份证{ID_NUMBER}, 慢性病用药正常"
FINDINGS_SHOWN = "户主电话138****1234, 身份证371522********123X, 慢性病用药正常"
SECRETS = (ID_NUMBER, PHONE, ADDRESS, "三组18号")


# --- scrub ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("户主电话13805351234", "户主电话138****1234"),
        ("身份证37152219800101123X号", "身份证371522********123X号"),
        ("小写37152219800101123x", "小写371522********123x"),
        ("371522198001011234", "371522********1234"),
        ("老证号371522800101123。", "老证号371522*****1123。"),
        ("电话+86 138-0535-1234请回电", "电话+86 138****1234请回电"),
        ("电话 +8613805351234", "电话 +86138****1234"),
        ("0086 139 1234 5678", "0086 139****5678"),
        ("儿子15912345678、女儿18612345678", "儿子159****5678、女儿186****5678"),
        # A longer run of digits is something else: a bank card, a household number.
        ("卡号6222021234567890123", "卡号6222021234567890123"),
        ("户编号3715221012010001", "户编号3715221012010001"),
        ("1380535123456", "1380535123456"),
        # Not a mobile: 12 is no mobile prefix, and too few digits.
        ("座机12805351234, 1380535123", "座机12805351234, 1380535123"),
        (
            "燕店镇王庄村三组18号, 2026-11-20 资金20000元",
            "燕店镇王庄村三组18号, 2026-11-20 资金20000元",
        ),
    ],
)
def test_scrub_masks_id_numbers_and_mobiles_only(text: str, shown: str) -> None:
    assert scrub(text) == shown
    assert scrub(shown) == shown  # scrubbing again changes nothing


def test_conflict_values_are_scrubbed_without_pii_read() -> None:
    values = {
        "phone": PHONE,
        "group_name": f"三组 (组长{PHONE})",
        "pairing_cadres": [{"name": "李明", "unit": f"农业农村局 {ID_NUMBER}"}],
        "exit_year": 2019,
    }
    assert masked(values, reveal=True) == values
    assert masked(values, reveal=False) == {
        "phone": "138****1234",
        "group_name": "三组 (组长138****1234)",
        "pairing_cadres": [{"name": "李明", "unit": "农业农村局 371522********123X"}],
        "exit_year": 2019,
    }


# --- the API -------------------------------------------------------------------------------------


def _visit(household_id: Any, revision: int = 1, **changes: Any) -> dict[str, Any]:
    text = {
        "address": ADDRESS,
        "findings": FINDINGS,
        "requests": f"希望安排公益岗位, 联系{PHONE}",
        "photos": [{"sha256": SHA, "tag": "sign_in", "caption": f"入户签到 {PHONE}"}],
    }
    return visit_body(household_id, revision, **{**text, **changes})


def _measure(household_id: Any, revision: int = 1, **changes: Any) -> dict[str, Any]:
    report = {
        "reported_at": ago(days=3),
        "progress_pct": 60,
        "note": f"主体完工, 施工队电话{PHONE}",
        "photos": [{"sha256": SHA, "tag": "after", "caption": f"户主{ID_NUMBER}"}],
    }
    text = {
        "title": f"危房改造 ({ID_NUMBER})",
        "details": f"原址翻建, 户主电话{PHONE}",
        "progress_reports": [report],
    }
    return measure_body(household_id, revision, **{**text, **changes})


def _check_hidden(visit: dict[str, Any], measure: dict[str, Any] | None = None) -> None:
    assert visit["address"] is None
    assert visit["findings"] == FINDINGS_SHOWN
    assert visit["requests"] == "希望安排公益岗位, 联系138****1234"
    assert visit["photos"][0]["caption"] == "入户签到 138****1234"
    if measure is not None:
        assert measure["title"] == "危房改造 (371522********123X)"
        assert measure["details"] == "原址翻建, 户主电话138****1234"
        [report] = measure["progress_reports"]
        assert report["note"] == "主体完工, 施工队电话138****1234"
        assert report["photos"][0]["caption"] == "户主371522********123X"
    text = json.dumps([visit, measure], ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text, secret


def _check_full(visit: dict[str, Any], measure: dict[str, Any] | None = None) -> None:
    assert visit["address"] == ADDRESS
    assert visit["findings"] == FINDINGS
    assert visit["photos"][0]["caption"] == f"入户签到 {PHONE}"
    if measure is not None:
        assert measure["title"] == f"危房改造 ({ID_NUMBER})"
        assert measure["progress_reports"][0]["note"] == f"主体完工, 施工队电话{PHONE}"


async def _callers(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> dict[str, tuple[dict[str, str], bool]]:
    """Headers of each caller of village A1, and whether it may see personal data."""
    admin = world.users["admin_a"]
    without = await make_client(session, admin=admin, region=VILLAGE_A1)
    with_pii = await make_client(session, admin=admin, region=VILLAGE_A1, scopes=CLIENT_SCOPES)
    return {
        "secretary_a1": (world.headers("secretary_a1"), False),
        "client without pii:read": (await bearer_for(client, without), False),
        "officer_a1": (world.headers("officer_a1"), True),
        "admin_a": (world.headers("admin_a"), True),
        "client with pii:read": (await bearer_for(client, with_pii), True),
    }


async def _write_both(client: httpx.AsyncClient, world: World) -> tuple[uuid.UUID, uuid.UUID]:
    household_id = world.households["a1"].id
    visit_id, measure_id = uuid.uuid4(), uuid.uuid4()
    response = await put(client, world, "visit", _visit(household_id), record_id=visit_id)
    assert response.status_code == 201, response.text
    _check_full(response.json())
    response = await put(client, world, "measure", _measure(household_id), record_id=measure_id)
    assert response.status_code == 201, response.text
    return visit_id, measure_id


async def test_records_are_shown_as_the_caller_may_see_them(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    visit_id, measure_id = await _write_both(client, world)
    household_id = world.households["a1"].id

    for who, (headers, reveal) in (await _callers(client, session, world)).items():
        check = _check_full if reveal else _check_hidden
        visit = await client.get(f"{API}/visits/{visit_id}", headers=headers)
        measure = await client.get(f"{API}/measures/{measure_id}", headers=headers)
        assert visit.status_code == measure.status_code == 200, (who, visit.text, measure.text)
        check(visit.json(), measure.json())

        visits = await client.get(f"{API}/households/{household_id}/visits", headers=headers)
        measures = await client.get(f"{API}/households/{household_id}/measures", headers=headers)
        assert visits.status_code == measures.status_code == 200, who
        check(visits.json()["items"][0], measures.json()["items"][0])

        timeline = await client.get(f"{API}/households/{household_id}/timeline", headers=headers)
        assert timeline.status_code == 200, (who, timeline.text)
        assert {e["type"] for e in timeline.json()["items"]} >= {"visit", "measure_created"}
        for secret in SECRETS:
            assert secret not in timeline.text, (who, secret)


async def test_the_change_feed_shows_records_as_get_does(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    visit_id, measure_id = await _write_both(client, world)
    for who in ("secretary_a1", "officer_a1"):
        replica = Replica()
        await replica.sync(client, world.headers(who))
        visit = replica.objects[("visit", str(visit_id))]["data"]
        measure = replica.objects[("measure", str(measure_id))]["data"]
        got = await client.get(f"{API}/visits/{visit_id}", headers=world.headers(who))
        assert visit == got.json(), who
        if who == "secretary_a1":
            _check_hidden(visit, measure)
            for secret in SECRETS:
                assert secret not in json.dumps(replica.received, ensure_ascii=False), secret
        else:
            _check_full(visit, measure)


async def test_a_conflict_answer_shows_the_stored_record_scrubbed(
    client: httpx.AsyncClient, world: World
) -> None:
    visit_id, _ = await _write_both(client, world)
    other = _visit(world.households["a1"].id, mode="phone")
    response = await put(client, world, "visit", other, record_id=visit_id, who="secretary_a1")
    assert response.status_code == 409, response.text
    _check_hidden(response.json()["record"])


async def test_text_sent_back_as_shown_keeps_the_stored_text(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    visit_id, measure_id = await _write_both(client, world)
    headers = world.headers("secretary_a1")

    # The first secretary edits both as their phone received them.
    shown = (await client.get(f"{API}/visits/{visit_id}", headers=headers)).json()
    edited = {
        name: shown[name]
        for name in ("household_id", "visited_at", "mode", "location", "address", "findings")
    } | {
        "revision": 2,
        "requests": shown["requests"] + "; 已联系镇人社所",
        "follow_up": "下周回访, 新电话13912345678",
        "checks": {**shown["checks"], "housing": "ok"},
        "photos": [
            *shown["photos"],
            {"sha256": SHA, "tag": "evidence", "caption": "新照片"},
        ],
    }
    response = await put(client, world, "visit", edited, record_id=visit_id, who="secretary_a1")
    assert response.status_code == 200, response.text
    assert response.json()["follow_up"] == "下周回访, 新电话139****5678"

    visit = await session.get(Visit, visit_id, populate_existing=True)
    assert visit is not None and visit.revision == 2
    assert visit.address == ADDRESS
    assert visit.findings == FINDINGS
    # Edited text is stored as sent: the part it was shown masked stays masked.
    assert visit.requests == "希望安排公益岗位, 联系138****1234; 已联系镇人社所"
    assert visit.follow_up == "下周回访, 新电话13912345678"
    assert visit.check_housing == "ok"
    assert [p["caption"] for p in visit.photos] == [f"入户签到 {PHONE}", "新照片"]

    measure_shown = (await client.get(f"{API}/measures/{measure_id}", headers=headers)).json()
    report = {"reported_at": ago(hours=1), "progress_pct": 100, "note": "验收合格", "photos": []}
    body = {
        name: measure_shown[name]
        for name in ("household_id", "category", "title", "details", "start_date", "due_date")
    } | {
        "revision": 2,
        "status": "done",
        "progress_pct": 100,
        "progress_reports": [*measure_shown["progress_reports"], report],
    }
    # Sent through a sync batch: the same write rule.
    response = await client.post(
        BATCHES, json=batch([record("measure", measure_id, body)]), headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "updated", response.text

    measure = await session.get(Measure, measure_id, populate_existing=True)
    assert measure is not None and measure.revision == 2 and measure.status == "done"
    assert measure.title == f"危房改造 ({ID_NUMBER})"
    assert measure.details == f"原址翻建, 户主电话{PHONE}"
    assert [r["note"] for r in measure.progress_reports] == [
        f"主体完工, 施工队电话{PHONE}",
        "验收合格",
    ]
    assert measure.progress_reports[0]["photos"][0]["caption"] == f"户主{ID_NUMBER}"


async def test_text_sent_back_by_a_caller_with_pii_read_is_stored_as_sent(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """Masking a number by hand is an edit when the caller saw the number."""
    visit_id, _ = await _write_both(client, world)
    edited = _visit(world.households["a1"].id, 2, address=None, findings=FINDINGS_SHOWN)
    response = await put(client, world, "visit", edited, record_id=visit_id)
    assert response.status_code == 200, response.text

    visit = await session.get(Visit, visit_id, populate_existing=True)
    assert visit is not None and visit.revision == 2
    assert (visit.address, visit.findings) == (None, FINDINGS_SHOWN)


async def test_measure_titles_in_progress_and_measure_photos_are_scrubbed(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household_id = world.households["a1"].id
    measure_id = uuid.uuid4()
    body = _measure(
        household_id, start_date="2020-01-01", due_date="2020-01-31", status="in_progress"
    )
    response = await put(client, world, "measure", body, record_id=measure_id)
    assert response.status_code == 201, response.text

    for who, (headers, reveal) in (await _callers(client, session, world)).items():
        progress = await client.get(f"{API}/households/{household_id}/progress", headers=headers)
        photos = await client.get(f"{API}/measures/{measure_id}/photos", headers=headers)
        assert progress.status_code == photos.status_code == 200, (who, progress.text)
        measures = progress.json()["measures"]
        titles = [m["title"] for m in (*measures["overdue"], *measures["photo_pairs"])]
        titles.append(photos.json()["title"])
        assert len(titles) == 3, (who, measures)
        shown = f"危房改造 ({ID_NUMBER})" if reveal else "危房改造 (371522********123X)"
        assert titles == [shown] * 3, who
