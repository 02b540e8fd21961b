"""GET /quality/issues: every kind found on a record that has it and not on a near miss
(ACCEPTANCE 4 of issue 6), counts, paging, filters, who sees what, ID numbers masked."""

from __future__ import annotations

import random
import statistics
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from app.core.config import get_settings
from app.core.pagination import encode_cursor
from app.households import id_numbers
from app.households.models import Member
from app.quality import geo
from app.quality.vocabulary import IssueKind
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    ID_HEAD_A1,
    ID_SPOUSE_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
)
from tests.quality.dirt import Dirt, make_dirt

URL = "/api/v1/quality/issues"

# The hits whose name is the reason reported (kinds with several rules).
REASON_NAMED = {
    "id_number_invalid",
    "cause_contradicts_members",
    "income_implausible",
}
HEAD_REASONS = {
    "no_head": "no_head_member",
    "renamed": "head_name_differs",
    "head_removed": "no_head_member",
}


@pytest.fixture
async def dirt(session: AsyncSession, world: World) -> Dirt:
    return await make_dirt(session, world)


async def get(
    client: httpx.AsyncClient, world: World, who: str = "admin_a", **params: Any
) -> httpx.Response:
    return await client.get(URL, params=params, headers=world.headers(who))


async def every_issue(
    client: httpx.AsyncClient, world: World, who: str = "admin_a", **params: Any
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """All issues, page by page: (items in order, counts of the first page, pages)."""
    items: list[dict[str, Any]] = []
    cursor = None
    counts = None
    pages = 0
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await get(client, world, who, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        counts = counts or body["counts"]
        assert body["counts"] == counts  # the same on every page while nothing changes
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items, counts, pages


@pytest.mark.parametrize("kind", [k.value for k in IssueKind])
async def test_each_kind_reports_its_hits_and_none_of_its_near_misses(
    client: httpx.AsyncClient, world: World, dirt: Dirt, kind: str
) -> None:
    response = await get(client, world, kind=kind, limit=500)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {i["kind"] for i in body["items"]} <= {kind}
    assert body["next_cursor"] is None
    reported = {uuid.UUID(i["record_id"]): i for i in body["items"]}
    hits, misses = dirt.hits[kind], dirt.misses[kind]
    assert hits and misses
    missing = {name for name, record_id in hits.items() if record_id not in reported}
    assert not missing, f"{kind}: not reported {missing}"
    wrong = {name for name, record_id in misses.items() if record_id in reported}
    assert not wrong, f"{kind}: reported {wrong}"
    for name, record_id in hits.items():
        item = reported[record_id]
        if kind in REASON_NAMED:
            assert item["reasons"] == [name], item
        assert item["detail"]
        assert item["href"].startswith("/api/v1/") and item["href"].endswith(str(record_id))
        assert item["household_id"] in item["href"] or item["record_type"] != "member"
    if kind == "head_not_member":
        for name, reason in HEAD_REASONS.items():
            assert reported[hits[name]]["reasons"] == [reason]
    assert body["counts"]["by_kind"] == {kind: len(body["items"])}


async def test_details_name_what_is_wrong(
    client: httpx.AsyncClient, world: World, dirt: Dirt
) -> None:
    items, _, _ = await every_issue(client, world, limit=500)
    by_id = {(i["kind"], uuid.UUID(i["record_id"])): i for i in items}

    def detail(kind: str, name: str) -> str:
        return str(by_id[(kind, dirt.hits[kind][name])]["detail"])

    assert detail("id_number_missing", "none") == "无号 has no ID number"
    assert "check character" in detail("id_number_invalid", "check_character")
    first = by_id[("id_number_duplicate", dirt.hits["id_number_duplicate"]["first"])]
    assert first["reasons"] == ["other_household"]
    assert f"in household {VILLAGE_A3}" in first["detail"]  # the other holder's, by number
    across = detail("id_number_duplicate", "across")
    assert "1 household(s) outside your regions" in across and "371523" not in across
    assert detail("size_mismatch", "latest_differs") == (
        "the latest income snapshot (2024, annual) counts 3 people; "
        "the household has 2 current members"
    )
    assert detail("cause_contradicts_members", "schooling") == (
        "other cause schooling (因学) but no current member is in school"
    )
    assert "net income -4000.00 yuan is negative" in detail(
        "income_implausible", "negative_net_income"
    )
    assert "km from the median position" in detail("visit_far_from_village", "far")


async def test_counts_by_kind_and_village_match_the_items(
    client: httpx.AsyncClient, world: World, dirt: Dirt
) -> None:
    items, counts, _ = await every_issue(client, world, limit=500)
    assert counts["by_kind"] == {
        kind.value: sum(1 for i in items if i["kind"] == kind) for kind in IssueKind
    }
    assert counts["by_village"] == dict(Counter(i["village_code"] for i in items))
    assert set(counts["by_village"]) <= {VILLAGE_A1, VILLAGE_A2, VILLAGE_A3}
    # the world's own: a1's child without an ID number, a2 因病 with its one member healthy
    assert any(i["household_id"] == str(world.households["a1"].id) for i in items)
    assert sum(counts["by_kind"].values()) == len(items)


async def test_pages_of_two_walk_every_issue_exactly_once_in_order(
    client: httpx.AsyncClient, world: World, dirt: Dirt
) -> None:
    whole, counts, _ = await every_issue(client, world, limit=500)
    paged, paged_counts, pages = await every_issue(client, world, limit=2)
    keys = [(i["kind"], i["record_id"]) for i in paged]
    assert keys == [(i["kind"], i["record_id"]) for i in whole]
    assert len(set(keys)) == len(keys)
    assert pages == -(-len(whole) // 2)
    assert paged_counts == counts
    order = [list(IssueKind).index(IssueKind(i["kind"])) for i in paged]
    assert order == sorted(order)


async def test_pages_stay_exact_while_records_are_fixed(
    client: httpx.AsyncClient, session: AsyncSession, world: World, dirt: Dirt
) -> None:
    first = (await get(client, world, limit=5)).json()
    seen = [(i["kind"], i["record_id"]) for i in first["items"]]
    # Between two pages, a member already listed and one still ahead leave their households.
    listed = await session.get(Member, uuid.UUID(first["items"][0]["record_id"]))
    later = [i for i in dirt.hits["id_number_invalid"].values() if str(i) not in str(seen)]
    ahead = await session.get(Member, later[0])
    assert listed is not None and ahead is not None
    listed.removed_at = ahead.removed_at = utcnow()
    await session.flush()
    rest, _, _ = await every_issue(client, world, limit=5, cursor=first["next_cursor"])
    seen += [(i["kind"], i["record_id"]) for i in rest]
    assert len(seen) == len(set(seen))
    assert str(ahead.id) not in {record_id for _, record_id in seen}
    now, _, _ = await every_issue(client, world, limit=500)
    assert {(i["kind"], i["record_id"]) for i in now} <= set(seen)


async def test_kind_filter_takes_several_kinds(
    client: httpx.AsyncClient, world: World, dirt: Dirt
) -> None:
    wanted = ["visit_without_photo", "id_number_invalid"]
    response = await client.get(
        URL, params=[("kind", k) for k in wanted], headers=world.headers("admin_a")
    )
    body = response.json()
    assert {i["kind"] for i in body["items"]} == set(wanted)
    assert set(body["counts"]["by_kind"]) == set(wanted)
    # id_number_invalid comes first: the list is ordered as the kinds are listed
    assert body["items"][0]["kind"] == "id_number_invalid"


async def test_region_narrows_and_must_be_yours(
    client: httpx.AsyncClient, world: World, dirt: Dirt
) -> None:
    body = (await get(client, world, region=VILLAGE_A1)).json()
    assert body["items"] and {i["village_code"] for i in body["items"]} == {VILLAGE_A1}
    county = (await get(client, world, region=COUNTY_A, limit=500)).json()
    assert county["counts"]["by_village"][VILLAGE_A1] == len(body["items"])
    problem(await get(client, world, "admin_b", region=COUNTY_A), 404, "not_found")
    problem(await get(client, world, "officer_a2", region=VILLAGE_A1), 404, "not_found")
    problem(await get(client, world, region="371522000000-1"), 422, "validation_failed")


async def test_callers_see_only_their_villages(
    client: httpx.AsyncClient, world: World, dirt: Dirt
) -> None:
    for who, villages in [
        ("officer_a1", {VILLAGE_A1}),
        ("secretary_a1", {VILLAGE_A1}),
        ("officer_a2", {VILLAGE_A2}),
        ("admin_b", {VILLAGE_B1}),
    ]:
        items, counts, _ = await every_issue(client, world, who, limit=500)
        assert items, who
        assert {i["village_code"] for i in items} == villages, who
        assert set(counts["by_village"]) == villages, who
    b_items, _, _ = await every_issue(client, world, "admin_b", limit=500)
    # county B's admin sees its member's duplicate, the holder in county A unnamed
    across = [i for i in b_items if i["kind"] == "id_number_duplicate"]
    assert len(across) == 1 and "outside your regions" in across[0]["detail"]


async def test_id_numbers_never_appear_in_full(
    client: httpx.AsyncClient, session: AsyncSession, world: World, dirt: Dirt
) -> None:
    # A duplicate and a bad number in village A1, whose first secretary lacks pii:read.
    a1 = world.households["a1"]
    bad = ID_SPOUSE_A1[:17] + "9"
    for name, number in [("重号", ID_HEAD_A1), ("错号", bad)]:
        digest = id_numbers.search_hash(number, key=get_settings().pii_hash_key)
        session.add(
            Member(
                household_id=a1.id,
                name=name,
                id_number=number,
                id_number_hash=digest,
                relation="other",
            )
        )
    await session.flush()
    for who in ("secretary_a1", "officer_a1", "admin_a"):  # without pii:read, and with it
        response = await get(client, world, who, limit=500)
        assert response.status_code == 200
        items = response.json()["items"]
        kinds = {(i["kind"], i["household_id"]) for i in items}
        assert {("id_number_duplicate", str(a1.id)), ("id_number_invalid", str(a1.id))} <= kinds
        for number in {*dirt.numbers, ID_HEAD_A1, ID_SPOUSE_A1, bad}:
            assert number not in response.text, (who, number)
        masked = [i["id_number_masked"] for i in items if i["id_number_masked"]]
        assert masked and all("*****" in m for m in masked)
        assert id_numbers.mask(bad) in masked and id_numbers.mask(ID_HEAD_A1) in masked


async def test_bad_requests_are_problems(client: httpx.AsyncClient, world: World) -> None:
    problem(await get(client, world, None), 401, "not_authenticated")
    problem(await get(client, world, kind="typo"), 422, "validation_failed", "query.kind.0")
    problem(await get(client, world, cursor="bm9wZQ"), 422, "validation_failed", "query.cursor")
    for forged in (["not_a_kind", VILLAGE_A1, str(uuid.uuid4())], ["head_not_member", "", "x"]):
        cursor = encode_cursor(forged)
        problem(await get(client, world, cursor=cursor), 422, "validation_failed", "query.cursor")
    problem(await get(client, world, limit=501), 422, "validation_failed", "query.limit")


def test_medians_of_the_others_are_the_medians() -> None:
    rng = random.Random(6)
    for n in range(2, 40):
        values = [rng.choice([rng.random(), 0.5]) for _ in range(n)]
        expected = [statistics.median(values[:i] + values[i + 1 :]) for i in range(n)]
        assert geo.medians_of_others(values) == pytest.approx(expected)


def test_chinese_map_positions_come_back_to_wgs84() -> None:
    wgs = (36.2356, 115.6718)
    gcj = geo.wgs84_to_gcj02(*wgs)
    assert 0.2 < geo.haversine_km(*wgs, *gcj) < 1.0  # the offset is real …
    assert geo.haversine_km(*wgs, *geo.to_wgs84(*gcj, "gcj02")) < 0.005  # … and undone
    # 天安门 in BD-09 (Baidu) and WGS-84
    assert geo.haversine_km(39.9073, 116.3912, *geo.to_wgs84(39.915, 116.404, "bd09")) < 0.05
    assert geo.to_wgs84(48.85, 2.35, "gcj02") == (48.85, 2.35)  # outside China: as given


async def test_details_in_chinese_for_zh_cn_and_codes_unchanged(
    client: httpx.AsyncClient, world: World, dirt: Dirt
) -> None:
    english, _, _ = await every_issue(client, world, limit=500)
    response = await client.get(
        URL, params={"limit": 500}, headers={**world.headers("admin_a"), "Accept-Language": "zh"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Language"] == "zh-CN"
    assert "Accept-Language" in response.headers["Vary"]
    chinese = response.json()["items"]
    assert [{**i, "detail": None} for i in chinese] == [{**i, "detail": None} for i in english]
    by_id = {(i["kind"], uuid.UUID(i["record_id"])): i for i in chinese}

    def detail(kind: str, name: str) -> str:
        return str(by_id[(kind, dirt.hits[kind][name])]["detail"])

    assert detail("id_number_missing", "none") == "无号 没有身份证号码"
    assert detail("size_mismatch", "latest_differs") == (
        "最近一次收入核算（2024，annual）的家庭人口为 3 人，而该户现有成员 2 人"
    )
    assert detail("cause_contradicts_members", "schooling") == (
        "其他致贫原因为 schooling（因学），但现有成员中没有在校生"
    )
    assert detail("id_number_invalid", "check_character").endswith("：身份证号码的校验码错误")
