"""Monitoring cases as field records (issue 14, item 2): the write rule, the category rule, one
open case per household, what a revision may change, privacy, photos, and the lists."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from app.monitoring.models import MonitoringCase, MonitoringStep
from app.photos.models import PhotoRef
from app.records import service as records_service
from app.records.vocabulary import RecordType
from tests.assertions import problem
from tests.builders import (
    ID_HEAD_A1,
    PHONE_A1,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_B1,
    World,
    make_household,
)
from tests.monitoring.case_helpers import (
    API,
    CASES,
    case_body,
    make_alert,
    opened,
    put_case,
    take,
    taken,
)
from tests.records.bodies import Table

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


async def stored_case(session: AsyncSession, case_id: Any) -> MonitoringCase:
    case = await session.scalar(
        select(MonitoringCase)
        .where(col(MonitoringCase.id) == uuid.UUID(str(case_id)))
        .execution_options(populate_existing=True)
    )
    assert case is not None
    return case


# --- the write rule ------------------------------------------------------------------------------


async def test_created_unchanged_updated_conflict_stale(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    case_id = uuid.uuid4()
    body = case_body(household.id, photos=[{"sha256": SHA, "tag": "evidence"}])

    created = await put_case(client, world, body, case_id=case_id)
    assert created.status_code == 201, created.text
    assert created.headers["Record-Outcome"] == "created"
    view = created.json()
    assert view["id"] == str(case_id) and view["revision"] == 1
    assert view["status"] == "proposed" and view["steps"] == []
    assert view["identified_on"] is None and view["cleared_on"] is None
    assert view["clearing_method"] is None
    assert view["author_id"] == str(world.users["officer_a1"].id)
    case = await stored_case(session, case_id)
    assert case.open_household_id == household.id

    again = await put_case(client, world, body, case_id=case_id)
    assert (again.status_code, again.headers["Record-Outcome"]) == (200, "unchanged")
    assert again.json() == view

    revised = {**body, "revision": 2, "risk_types": ["illness", "high_rigid_expenses"]}
    updated = await put_case(client, world, revised, case_id=case_id)
    assert (updated.status_code, updated.headers["Record-Outcome"]) == (200, "updated")
    assert updated.json()["risk_types"] == ["illness", "high_rigid_expenses"]
    assert updated.json()["status"] == "proposed"

    other = {**revised, "description": "另一个说法"}
    conflict = problem(await put_case(client, world, other, case_id=case_id), 409, "conflict")
    assert conflict["record"]["revision"] == 2
    assert conflict["record"]["description"] == body["description"]
    stale = problem(await put_case(client, world, body, case_id=case_id), 409, "stale")
    assert stale["record"]["risk_types"] == ["illness", "high_rigid_expenses"]

    assert await session.scalar(select(func.count()).select_from(MonitoringCase)) == 1
    refs = (await session.scalars(select(PhotoRef).where(PhotoRef.record_id == case_id))).all()
    assert [(r.record_type, r.sha256, r.tag) for r in refs] == [
        ("monitoring_case", SHA, "evidence")
    ]


async def test_the_procedure_is_never_written_by_a_put(
    client: httpx.AsyncClient, world: World
) -> None:
    household = world.households["a1"]
    for name, value in [("status", "identified"), ("identified_on", "2026-01-01"), ("steps", [])]:
        response = await put_case(client, world, case_body(household.id, **{name: value}))
        problem(response, 422, "validation_failed", f"body.{name}")


async def test_field_rules(client: httpx.AsyncClient, session: AsyncSession, world: World) -> None:
    household = world.households["a1"]
    alert = await make_alert(session, world, household)
    elsewhere = await make_alert(session, world, world.households["a2"])
    table = Table()
    refused: list[tuple[str, dict[str, Any], str, str]] = [
        ("no risk", {"risk_types": []}, "body.risk_types", "too_short"),
        (
            "six risks",
            {"risk_types": ["illness", "disability", "schooling", "disaster", "accident", "other"]},
            "body.risk_types",
            "too_long",
        ),
        ("repeated", {"risk_types": ["illness", "illness"]}, "body.risk_types", "value_error"),
        ("unknown risk", {"risk_types": ["bad_luck"]}, "body.risk_types.0", "enum"),
        ("alert missing", {"found_via": "department_alert"}, "body.alert_id", "value_error"),
        ("alert not named", {"alert_id": str(alert.id)}, "body.alert_id", "value_error"),
        (
            "alert of another household",
            {"found_via": "department_alert", "alert_id": str(elsewhere.id)},
            "body.alert_id",
            "not_found",
        ),
        (
            "no such alert",
            {"found_via": "department_alert", "alert_id": str(uuid.uuid4())},
            "body.alert_id",
            "not_found",
        ),
        ("in the future", {"found_on": "2099-01-01"}, "body.found_on", "in_future"),
        ("unknown category", {"category": "poor"}, "body.category", "enum"),
    ]
    for label, changes, field, kind in refused:
        with table.case(label):
            response = await put_case(client, world, case_body(household.id, **changes))
            body = problem(response, 422, "validation_failed", field)
            assert kind in [e["type"] for e in body["errors"]], body
    table.check()
    assert await session.scalar(select(func.count()).select_from(MonitoringCase)) == 0

    found = await opened(
        client, world, household, found_via="department_alert", alert_id=str(alert.id)
    )
    assert found["alert_id"] == str(alert.id) and found["found_via"] == "department_alert"


@pytest.mark.parametrize(
    ("origin", "status", "category", "allowed"),
    [
        ("registered", "lifted", "unstable_lifted", True),
        ("registered", "lifted_no_support", "unstable_lifted", True),
        ("registered", "in_poverty", "unstable_lifted", False),
        ("registered", "returned", "unstable_lifted", False),
        ("ordinary", None, "unstable_lifted", False),
        ("ordinary", None, "marginal", True),
        ("registered", "lifted", "marginal", False),
        ("registered", "in_poverty", "sudden_hardship", True),
        ("ordinary", None, "sudden_hardship", True),
    ],
)
async def test_category_rule(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    origin: str,
    status: str | None,
    category: str,
    allowed: bool,
) -> None:
    household = await make_household(session, village=VILLAGE_A1, origin=origin, status=status)
    response = await put_case(client, world, case_body(household.id, category=category))
    if allowed:
        assert response.status_code == 201, response.text
        assert response.json()["category"] == category
    else:
        body = problem(response, 422, "validation_failed", "body.category")
        assert body["errors"][0]["type"] == "category_not_allowed"


async def test_a_revision_may_not_move_into_a_category_the_household_cannot_have(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await make_household(session, village=VILLAGE_A1, origin="ordinary")
    case_id = uuid.uuid4()
    body = case_body(household.id, category="marginal")
    assert (await put_case(client, world, body, case_id=case_id)).status_code == 201
    moved = {**body, "revision": 2, "category": "unstable_lifted"}
    problem(await put_case(client, world, moved, case_id=case_id), 422, "validation_failed")


# --- one open case per household ------------------------------------------------------------


async def test_a_second_open_case_names_the_open_one(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    first = await opened(client, world, household)
    second_id = uuid.uuid4()
    response = await put_case(client, world, case_body(household.id), case_id=second_id)
    body = problem(response, 409, "case_open")
    assert body["open_case_id"] == first["id"] and body["open_case_status"] == "proposed"
    assert first["id"] in body["detail"]
    assert await session.get(MonitoringCase, second_id) is None

    # Still open while under review; rejected, the household may have a new case.
    await taken(client, world, first["id"], "village_review")
    problem(await put_case(client, world, case_body(household.id)), 409, "case_open")
    rejected = await take(client, world, first["id"], "town_review", "reject", note="收入达标")
    assert rejected.status_code == 201 and rejected.json()["status"] == "rejected"
    assert (await stored_case(session, first["id"])).open_household_id is None
    again = await put_case(client, world, case_body(household.id), case_id=second_id)
    assert again.status_code == 201, again.text
    assert (await stored_case(session, second_id)).open_household_id == household.id


async def test_the_database_refuses_two_open_cases_even_when_the_check_is_raced(
    client: httpx.AsyncClient, session: AsyncSession, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two phones opening a case at once both pass the check; the unique column decides."""
    household = world.households["a1"]
    first = await opened(client, world, household)
    kind = records_service.KINDS[RecordType.monitoring_case]
    # As if the first case was committed after the second request checked.
    monkeypatch.setitem(records_service.KINDS, kind.record_type, replace(kind, check=None))
    response = await put_case(client, world, case_body(household.id))
    body = problem(response, 409, "case_open")
    assert body["open_case_id"] == first["id"]
    assert await session.scalar(select(func.count()).select_from(MonitoringCase)) == 1


# --- what a revision may change ----------------------------------------------------------------


async def test_identification_fields_are_fixed_once_identified(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    case_id = uuid.uuid4()
    body = case_body(household.id)
    assert (await put_case(client, world, body, case_id=case_id)).status_code == 201
    # Before identification, even the category may be corrected.
    body = {**body, "revision": 2, "found_on": "2025-12-18"}
    assert (await put_case(client, world, body, case_id=case_id)).status_code == 200
    await taken(client, world, case_id, "village_review", "town_review", "county_approval")

    for name, value in [("category", "marginal"), ("found_on", "2025-12-01")]:
        changed = {**body, "revision": 3, name: value}
        response = await put_case(client, world, changed, case_id=case_id)
        refused = problem(response, 422, "validation_failed", f"body.{name}")
        assert refused["errors"][0]["type"] == "immutable"
    # The risk, its description and photos still may change.
    later = {**body, "revision": 3, "risk_types": ["illness", "lack_labour"], "description": "新"}
    response = await put_case(client, world, later, case_id=case_id)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "identified"
    assert response.json()["identified_on"] is not None
    assert len(response.json()["steps"]) == 3


async def test_a_closed_case_takes_no_revision(client: httpx.AsyncClient, world: World) -> None:
    case_id = uuid.uuid4()
    body = case_body(world.households["a1"].id)
    assert (await put_case(client, world, body, case_id=case_id)).status_code == 201
    assert (await take(client, world, case_id, "village_review", "reject")).status_code == 201
    revised = {**body, "revision": 2, "description": "补充"}
    closed = await put_case(client, world, revised, case_id=case_id)
    assert "rejected" in problem(closed, 409, "case_closed")["detail"]
    retry = await put_case(client, world, body, case_id=case_id)
    assert retry.status_code == 200 and retry.headers["Record-Outcome"] == "unchanged"


async def test_only_the_author_the_first_secretary_or_the_county_admin_revise_a_case(
    client: httpx.AsyncClient, world: World
) -> None:
    household = world.households["a1"]
    case_id = uuid.uuid4()
    body = case_body(household.id)
    assert (await put_case(client, world, body, case_id=case_id, who="admin_a")).status_code == 201
    revised = {**body, "revision": 2, "description": "补充"}
    problem(await put_case(client, world, revised, case_id=case_id), 403, "forbidden")
    ok = await put_case(client, world, revised, case_id=case_id, who="secretary_a1")
    assert ok.status_code == 200
    # Town staff write no field record.
    problem(
        await put_case(client, world, case_body(household.id), who="town_a1"),
        403,
        "insufficient_scope",
    )
    # Another village's household does not exist for this officer.
    elsewhere = case_body(world.households["a2"].id)
    problem(await put_case(client, world, elsewhere), 404, "household_not_found")


# --- privacy -------------------------------------------------------------------------------------


async def test_text_is_scrubbed_without_pii_read_and_kept_when_sent_back_as_shown(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = world.households["a1"]
    case_id = uuid.uuid4()
    text = f"户主 {ID_HEAD_A1}, 电话 {PHONE_A1}"
    body = case_body(
        household.id,
        description=text,
        photos=[{"sha256": SHA, "tag": "evidence", "caption": f"联系 {PHONE_A1}"}],
    )
    assert (await put_case(client, world, body, case_id=case_id)).status_code == 201
    await take(client, world, case_id, "village_review", note=f"户主电话 {PHONE_A1}")

    full = (await client.get(f"{CASES}/{case_id}", headers=world.headers("officer_a1"))).json()
    assert full["description"] == text and full["steps"][0]["note"] == f"户主电话 {PHONE_A1}"
    shown = (await client.get(f"{CASES}/{case_id}", headers=world.headers("secretary_a1"))).json()
    assert ID_HEAD_A1 not in shown["description"] and PHONE_A1 not in shown["description"]
    assert "138****1234" in shown["description"]
    assert PHONE_A1 not in shown["photos"][0]["caption"]
    assert PHONE_A1 not in shown["steps"][0]["note"]

    # The first secretary edits the risk types on a phone that holds the scrubbed text.
    sent_back = {
        **{k: shown[k] for k in ("household_id", "category", "found_via", "found_on")},
        "revision": 2,
        "risk_types": ["illness", "accident"],
        "description": shown["description"],
        "photos": shown["photos"],
    }
    response = await put_case(client, world, sent_back, case_id=case_id, who="secretary_a1")
    assert response.status_code == 200, response.text
    case = await stored_case(session, case_id)
    assert case.description == text
    assert case.photos[0]["caption"] == f"联系 {PHONE_A1}"
    assert case.risk_types == ["illness", "accident"]


# --- lists ---------------------------------------------------------------------------------------


async def list_ids(
    client: httpx.AsyncClient, world: World, who: str, **params: Any
) -> list[str] | httpx.Response:
    response = await client.get(CASES, params=params, headers=world.headers(who))
    if response.status_code != 200:
        return response
    return [item["id"] for item in response.json()["items"]]


async def test_lists_by_region_status_and_category(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a1 = await opened(client, world, world.households["a1"])
    ordinary = await make_household(session, village=VILLAGE_A1, origin="ordinary")
    marginal = await opened(client, world, ordinary, category="marginal")
    a2 = (
        await put_case(client, world, case_body(world.households["a2"].id), who="officer_a2")
    ).json()
    b1 = (await put_case(client, world, case_body(world.households["b1"].id), who="admin_b")).json()
    await taken(client, world, a1["id"], "village_review")

    # Newest first; each caller sees their own regions.
    assert await list_ids(client, world, "officer_a1") == [marginal["id"], a1["id"]]
    assert await list_ids(client, world, "town_a1") == [a2["id"], marginal["id"], a1["id"]]
    assert await list_ids(client, world, "admin_a", region=VILLAGE_A2) == [a2["id"]]
    assert await list_ids(client, world, "admin_b") == [b1["id"]]
    assert await list_ids(client, world, "admin_a", status="village_reviewed") == [a1["id"]]
    assert await list_ids(client, world, "town_a1", category="marginal") == [marginal["id"]]
    assert await list_ids(client, world, "admin_a", region=TOWN_A1, status="proposed") == [
        a2["id"],
        marginal["id"],
    ]

    # A region outside the caller's: not found, as other region lists answer.
    for who, region in [
        ("officer_a1", VILLAGE_B1),
        ("officer_a1", TOWN_A1),
        ("town_a1", VILLAGE_B1),
    ]:
        response = await list_ids(client, world, who, region=region)
        assert isinstance(response, httpx.Response)
        problem(response, 404, "region_not_found")
    response = await list_ids(client, world, "admin_a", status="done")
    assert isinstance(response, httpx.Response)
    problem(response, 422, "validation_failed", "query.status")

    # Keyset pages.
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(CASES, params=params, headers=world.headers("town_a1"))).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [a2["id"], marginal["id"], a1["id"]]

    # One case, and a household's cases.
    one = await client.get(f"{CASES}/{a1['id']}", headers=world.headers("town_a1"))
    assert one.status_code == 200 and one.json()["steps"][0]["step"] == "village_review"
    problem(
        await client.get(f"{CASES}/{a1['id']}", headers=world.headers("admin_b")),
        404,
        "case_not_found",
    )
    url = f"{API}/households/{ordinary.id}/monitoring-cases"
    listed = (await client.get(url, headers=world.headers("secretary_a1"))).json()
    assert [item["id"] for item in listed["items"]] == [marginal["id"]]
    problem(await client.get(url, headers=world.headers("officer_a2")), 404, "household_not_found")


async def test_steps_of_a_page_of_cases_are_loaded_in_one_query(
    client: httpx.AsyncClient, session: AsyncSession, engine: AsyncEngine, world: World
) -> None:
    for _ in range(3):
        household = await make_household(session, village=VILLAGE_A1)
        body = await opened(client, world, household)
        await taken(client, world, body["id"], "village_review")
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        response = await client.get(CASES, headers=world.headers("admin_a"))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert response.status_code == 200 and len(response.json()["items"]) == 3
    assert all(len(item["steps"]) == 1 for item in response.json()["items"])
    step_queries = [s for s in statements if "FROM monitoring_step" in s]
    assert len(step_queries) == 1, step_queries
    assert await session.scalar(select(func.count()).select_from(MonitoringStep)) == 3
