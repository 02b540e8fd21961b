"""Support measures: field errors (ACCEPTANCE 3), money and dates, reading one and a list."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.records.vocabulary import MeasureCategory, MeasureStatus
from tests.assertions import problem
from tests.builders import World
from tests.records.bodies import API, Table, counts, measure_body, put
from tests.records.test_visits import list_all

SHA = "ab" * 32


async def put_measure(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    world: World,
    *,
    who: str = "officer_a1",
    measure_id: uuid.UUID | None = None,
) -> httpx.Response:
    return await put(client, world, "measure", body, record_id=measure_id, who=who)


REPORT_0 = "body.progress_reports.0."


def report(**changes: Any) -> dict[str, Any]:
    return {"reported_at": "2026-07-15T10:00:00+08:00", "progress_pct": 60, **changes}


def reports(*items: dict[str, Any]) -> dict[str, Any]:
    return {"progress_reports": list(items)}


# (changes to a valid body, the field the 422 must name)
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"category": "tourism"}, "body.category"),
    ({"category": "产业"}, "body.category"),  # the Chinese label is not the code
    ({"category": None}, "body.category"),
    ({"title": ""}, "body.title"),
    ({"title": "   "}, "body.title"),
    ({"title": "措" * 201}, "body.title"),
    ({"status": "finished"}, "body.status"),
    ({"progress_pct": 101}, "body.progress_pct"),
    ({"progress_pct": -1}, "body.progress_pct"),
    ({"progress_pct": 50.5}, "body.progress_pct"),
    ({"funds_yuan": "20000.001"}, "body.funds_yuan"),
    ({"funds_yuan": -1}, "body.funds_yuan"),
    ({"funds_yuan": "lots"}, "body.funds_yuan"),
    ({"funds_spent_yuan": 0.005}, "body.funds_spent_yuan"),
    ({"start_date": "2026-02-30"}, "body.start_date"),
    ({"due_date": "2026-03-31"}, "body.due_date"),  # before start_date 2026-04-01
    ({"start_date": "2026-11-01", "due_date": "2026-10-31"}, "body.due_date"),
    (reports(report(progress_pct=101)), REPORT_0 + "progress_pct"),
    (reports(report(reported_at="2026-07-15")), REPORT_0 + "reported_at"),
    (reports(report(reported_at="2026-07-15T10:00:00")), REPORT_0 + "reported_at"),
    (reports(report(), report(note="n" * 2001)), "body.progress_reports.1.note"),
    (reports(report(photos=[{"sha256": "xyz", "tag": "after"}])), REPORT_0 + "photos.0.sha256"),
    (reports(report(photos=[{"sha256": SHA, "tag": "later"}])), REPORT_0 + "photos.0.tag"),
    (reports(report(extra=1)), "body.progress_reports.0.extra"),
    ({"funds": "100"}, "body.funds"),  # the field is funds_yuan
    ({"revision": 0}, "body.revision"),
]


async def test_every_field_error_is_a_422_naming_it_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household_id = world.households["a1"].id
    before = await counts(session)
    table = Table()
    for changes, field in INVALID:
        with table.case(f"{field} {changes!r:.80}"):
            response = await put_measure(client, {**measure_body(household_id), **changes}, world)
            problem(response, 422, "validation_failed", field)
    table.check()
    assert await counts(session) == before


async def test_unknown_or_hidden_household_is_the_same_404(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    before = await counts(session)
    unknown = await put_measure(client, measure_body(uuid.uuid4()), world)
    unknown_body = problem(unknown, 404, "household_not_found", "body.household_id")
    for household in ("a2", "b1"):
        hidden = await put_measure(client, measure_body(world.households[household].id), world)
        hidden_body = problem(hidden, 404, "household_not_found", "body.household_id")
        same = ("type", "title", "status", "code", "errors")
        assert {k: hidden_body[k] for k in same} == {k: unknown_body[k] for k in same}
        assert hidden_body.keys() == unknown_body.keys()
    assert await counts(session) == before


async def test_a_new_revision_is_checked_like_the_first(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """An invalid revision 2 changes nothing: the stored revision 1 stays as it was."""
    household_id = world.households["a1"].id
    measure_id = uuid.uuid4()
    first = await put_measure(client, measure_body(household_id), world, measure_id=measure_id)
    assert first.status_code == 201, first.text
    before = await counts(session)
    bad = await put_measure(
        client,
        measure_body(household_id, 2, progress_pct=101, status="done"),
        world,
        measure_id=measure_id,
    )
    problem(bad, 422, "validation_failed", "body.progress_pct")
    # Nor may a record move to another household.
    moved = await put_measure(
        client,
        measure_body(world.households["a2"].id, 2),
        world,
        who="admin_a",
        measure_id=measure_id,
    )
    problem(moved, 422, "validation_failed", "body.household_id")
    assert await counts(session) == before
    stored = await client.get(f"{API}/measures/{measure_id}", headers=world.headers("officer_a1"))
    assert stored.json() == first.json()


async def test_measure_as_written_and_read(client: httpx.AsyncClient, world: World) -> None:
    household_id = world.households["a1"].id
    measure_id = uuid.uuid4()
    sent = measure_body(
        household_id,
        category="photovoltaic",
        title="  光伏收益分配  ",
        details="村级光伏电站收益, 每户每年",
        funds_yuan=3000.5,
        funds_spent_yuan="0.1",
        start_date="2026-04-01",
        due_date="2026-04-01",  # the same day is allowed
        status="in_progress",
        progress_pct=60,
        progress_reports=[
            report(note="主体完工", photos=[{"sha256": SHA.upper(), "tag": "after"}]),
            report(reported_at="2026-08-01T00:00:00Z", progress_pct=80),
        ],
    )
    written = await put_measure(client, sent, world, measure_id=measure_id)
    assert written.status_code == 201, written.text
    body = written.json()
    assert body["title"] == "光伏收益分配"  # trimmed
    assert (body["funds_yuan"], body["funds_spent_yuan"]) == ("3000.50", "0.10")
    assert (body["start_date"], body["due_date"]) == ("2026-04-01", "2026-04-01")
    assert (body["category"], body["status"], body["progress_pct"]) == (
        "photovoltaic",
        "in_progress",
        60,
    )
    assert [r["progress_pct"] for r in body["progress_reports"]] == [60, 80]
    assert body["progress_reports"][0]["photos"][0]["sha256"] == SHA
    assert body["progress_reports"][0]["note"] == "主体完工"

    read = await client.get(f"{API}/measures/{measure_id}", headers=world.headers("admin_a"))
    assert read.status_code == 200, read.text
    assert read.json() == body

    # Defaults: planned, 0 %, no funds, no dates, no reports.
    bare = await put_measure(
        client,
        {"revision": 1, "household_id": str(household_id), "category": "other", "title": "x"},
        world,
    )
    assert bare.status_code == 201, bare.text
    bare_body = bare.json()
    assert (bare_body["status"], bare_body["progress_pct"]) == ("planned", 0)
    assert bare_body["funds_yuan"] is None and bare_body["funds_spent_yuan"] is None
    assert bare_body["start_date"] is None and bare_body["progress_reports"] == []


async def test_every_domain_category_and_status_is_accepted(
    client: httpx.AsyncClient, world: World
) -> None:
    household_id = world.households["a1"].id
    table = Table()
    for name, values in (("category", MeasureCategory), ("status", MeasureStatus)):
        for value in values:
            with table.case(f"{name}={value}"):
                body = measure_body(household_id, **{name: value.value})
                response = await put_measure(client, body, world)
                assert response.status_code == 201, response.text
                assert response.json()[name] == value.value
    table.check()
    # DOMAIN.md's categories, by their English codes.
    assert {c.value for c in MeasureCategory} == {
        "industry", "employment", "finance", "public_welfare_job", "health",
        "compulsory_education", "other_education", "social_safety_net", "housing_safety",
        "drinking_water", "relocation", "ecological", "photovoltaic", "social_help",
        "living_conditions", "infrastructure", "other",
    }  # fmt: skip


async def test_other_village_cannot_read_a_measure(client: httpx.AsyncClient, world: World) -> None:
    measure_id = uuid.uuid4()
    created = await put_measure(
        client, measure_body(world.households["a1"].id), world, measure_id=measure_id
    )
    assert created.status_code == 201
    for who in ("officer_a2", "admin_b"):
        hidden = await client.get(f"{API}/measures/{measure_id}", headers=world.headers(who))
        missing = await client.get(f"{API}/measures/{uuid.uuid4()}", headers=world.headers(who))
        assert (
            problem(hidden, 404, "record_not_found").keys()
            == problem(missing, 404, "record_not_found").keys()
        )
        listed = await client.get(
            f"{API}/households/{world.households['a1'].id}/measures", headers=world.headers(who)
        )
        problem(listed, 404, "household_not_found")
    # The measure's own officer reads it; the other village's officer cannot change it either.
    assert (
        await client.get(f"{API}/measures/{measure_id}", headers=world.headers("officer_a1"))
    ).status_code == 200
    changed = await put_measure(
        client,
        measure_body(world.households["a1"].id, 2),
        world,
        who="officer_a2",
        measure_id=measure_id,
    )
    problem(changed, 404, "household_not_found")


async def test_list_is_newest_first_each_exactly_once(
    client: httpx.AsyncClient, world: World
) -> None:
    household_id = world.households["a1"].id
    ids = []
    for n in range(5):
        measure_id = uuid.uuid4()
        body = measure_body(household_id, title=f"措施{n}")
        assert (await put_measure(client, body, world, measure_id=measure_id)).status_code == 201
        ids.append(str(measure_id))
    url = f"{API}/households/{household_id}/measures"
    newest_first = list(reversed(ids))
    pages = await list_all(client, world, url, limit=2, who="secretary_a1")
    assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert await list_all(client, world, url, limit=3) == [newest_first[:3], newest_first[3:]]
