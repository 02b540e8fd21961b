"""The procedure of a monitoring case (issue 14, item 3): order, roles, regions, the clearing
rule at each clearance, the dates and the history; and the town staff who take the town's steps."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.models import TokenFamily
from app.core.config import get_settings
from app.core.security import create_access_token
from app.households.models import Member
from app.monitoring.models import MonitoringCase, MonitoringStep
from app.users import service as users_service
from app.users.models import Role
from app.users.schemas import UserCreate
from app.webhooks.models import WebhookEvent
from tests.assertions import problem
from tests.builders import (
    COUNTY_A,
    TOWN_A1,
    TOWN_A2,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    make_household,
    make_user,
    token_for,
)
from tests.monitoring.case_helpers import (
    ACTORS,
    API,
    CASES,
    CLEARANCE,
    CLEARED,
    IDENTIFICATION,
    IDENTIFIED,
    clearable_household,
    freeze_today,
    opened,
    take,
    taken,
)
from tests.records.bodies import Table
from tests.webhooks.helpers import listening

# Who may see a case of village A1 but takes no step of each kind.
WRONG_ROLES = {
    "village": ("town_a1", "admin_a"),
    "town": ("officer_a1", "secretary_a1", "admin_a"),
    "county": ("officer_a1", "secretary_a1", "town_a1"),
}
LEVEL = {
    "village_review": "village",
    "town_review": "town",
    "county_approval": "county",
    "clearance_village_review": "village",
    "clearance_town_review": "town",
    "clearance_county_approval": "county",
}


async def step_rows(session: AsyncSession, case_id: Any) -> list[MonitoringStep]:
    rows = await session.scalars(
        select(MonitoringStep)
        .where(col(MonitoringStep.case_id) == uuid.UUID(str(case_id)))
        .order_by(col(MonitoringStep.seq))
    )
    return list(rows)


async def events(session: AsyncSession, type: str) -> list[WebhookEvent]:
    await session.flush()
    return list(await session.scalars(select(WebhookEvent).where(col(WebhookEvent.type) == type)))


async def test_a_case_from_proposal_to_cleared(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    household = await clearable_household(session, world)
    case = await opened(client, world, household, category="marginal", found_on="2026-01-02")
    case_id = case["id"]

    freeze_today(monkeypatch, IDENTIFIED)
    expected_status = ["village_reviewed", "town_reviewed", "identified"]
    for step, status in zip(IDENTIFICATION, expected_status, strict=True):
        body = await taken(client, world, case_id, step)
        assert body["status"] == status, step
        assert body["identified_on"] == (IDENTIFIED.isoformat() if status == "identified" else None)
    identified = await events(session, "monitoring.case_identified")
    assert [e.data["case_id"] for e in identified] == [case_id]

    freeze_today(monkeypatch, CLEARED)
    response = await take(client, world, case_id, "clearance_village_review", method="assisted")
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "clearing_village_reviewed"
    assert response.json()["clearing_method"] == "assisted"
    body = await taken(client, world, case_id, "clearance_town_review")
    assert body["status"] == "clearing_town_reviewed"
    assert await events(session, "monitoring.case_cleared") == []
    body = await taken(client, world, case_id, "clearance_county_approval")
    assert body["status"] == "cleared"
    assert body["identified_on"] == IDENTIFIED.isoformat()
    assert body["cleared_on"] == CLEARED.isoformat()
    assert body["clearing_method"] == "assisted"
    cleared = await events(session, "monitoring.case_cleared")
    assert [e.data["case_id"] for e in cleared] == [case_id]

    # The history holds every step: who, in which role, what was decided, from and to.
    steps = body["steps"]
    assert [s["seq"] for s in steps] == [1, 2, 3, 4, 5, 6]
    assert [s["step"] for s in steps] == [*IDENTIFICATION, *CLEARANCE]
    assert {s["decision"] for s in steps} == {"approve"}
    assert [s["actor_id"] for s in steps] == [str(world.users[ACTORS[s]].id) for s in ACTORS]
    assert [s["actor_role"] for s in steps] == [
        "officer", "town_staff", "county_admin", "first_secretary", "town_staff", "county_admin",
    ]  # fmt: skip
    assert [(s["status_from"], s["status_to"]) for s in steps] == [
        ("proposed", "village_reviewed"),
        ("village_reviewed", "town_reviewed"),
        ("town_reviewed", "identified"),
        ("identified", "clearing_village_reviewed"),
        ("clearing_village_reviewed", "clearing_town_reviewed"),
        ("clearing_town_reviewed", "cleared"),
    ]
    assert [s["method"] for s in steps] == [None, None, None, "assisted", None, None]
    assert all(s["taken_at"] for s in steps)
    assert len(await step_rows(session, case_id)) == 6

    stored = await session.get(MonitoringCase, uuid.UUID(case_id), populate_existing=True)
    assert stored is not None and stored.open_household_id is None
    # Cleared, it takes no more steps; the household may have a new case.
    out = problem(await take(client, world, case_id, "village_review"), 409, "step_out_of_order")
    assert out["case_status"] == "cleared" and out["expected_step"] is None
    await opened(client, world, household, category="sudden_hardship", found_on="2026-11-30")


async def test_steps_out_of_order(client: httpx.AsyncClient, world: World) -> None:
    case = await opened(client, world, world.households["a1"])
    table = Table()
    for step in (*IDENTIFICATION[1:], *CLEARANCE):
        with table.case(step):
            body = problem(await take(client, world, case["id"], step), 409, "step_out_of_order")
            assert body["case_status"] == "proposed" and body["expected_step"] == "village_review"
            assert "village_review" in body["detail"]
    table.check()
    await taken(client, world, case["id"], "village_review")
    again = problem(
        await take(client, world, case["id"], "village_review"), 409, "step_out_of_order"
    )
    assert again["case_status"] == "village_reviewed" and again["expected_step"] == "town_review"
    await taken(client, world, case["id"], "town_review", "county_approval")
    body = problem(await take(client, world, case["id"], "town_review"), 409, "step_out_of_order")
    assert body["case_status"] == "identified"
    assert body["expected_step"] == "clearance_village_review"


async def test_each_step_refuses_the_other_roles(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    household = await clearable_household(session, world)
    case = await opened(client, world, household, category="marginal", found_on="2026-01-02")
    table = Table()
    for step in (*IDENTIFICATION, *CLEARANCE):
        freeze_today(monkeypatch, IDENTIFIED if step in IDENTIFICATION else CLEARED)
        for who in WRONG_ROLES[LEVEL[step]]:
            with table.case(f"{step} by {who}"):
                response = await take(client, world, case["id"], step, who=who)
                body = problem(response, 403, "forbidden")
                assert step in body["detail"]
        assert (await take(client, world, case["id"], step)).status_code == 201, step
    table.check()
    assert len(await step_rows(session, case["id"])) == 6


async def test_a_step_outside_the_callers_region_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    town_a2 = await make_user(
        session, username=f"town-a2-{uuid.uuid4().hex[:6]}", role=Role.town_staff, regions=[TOWN_A2]
    )
    world.tokens["town_a2"] = await token_for(session, town_a2)
    case = await opened(client, world, world.households["a1"])
    for step, who in [
        ("village_review", "officer_a2"),  # another village's officer
        ("town_review", "town_a2"),  # another town's staff
        ("county_approval", "admin_b"),  # another county's admin
    ]:
        problem(await take(client, world, case["id"], step, who=who), 404, "case_not_found")
        await taken(client, world, case["id"], step)
    problem(
        await take(client, world, uuid.uuid4(), "village_review"), 404, "case_not_found"
    )  # no such case at all
    assert len(await step_rows(session, case["id"])) == 3


async def test_a_reject_at_identification_ends_the_case_and_at_clearance_returns_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rejected = await opened(client, world, world.households["a1"])
    await taken(client, world, rejected["id"], "village_review", "town_review")
    response = await take(client, world, rejected["id"], "county_approval", "reject", note="不符合")
    assert response.status_code == 201
    assert response.json()["status"] == "rejected" and response.json()["identified_on"] is None
    assert response.json()["steps"][-1]["decision"] == "reject"
    assert response.json()["steps"][-1]["note"] == "不符合"

    household = await clearable_household(session, world)
    case = await opened(client, world, household, category="marginal", found_on="2026-01-02")
    freeze_today(monkeypatch, IDENTIFIED)
    await taken(client, world, case["id"], *IDENTIFICATION)
    freeze_today(monkeypatch, CLEARED)
    await taken(client, world, case["id"], "clearance_village_review")
    back = await take(client, world, case["id"], "clearance_town_review", "reject", note="再观察")
    assert back.status_code == 201, back.text
    body = back.json()
    assert body["status"] == "identified" and body["clearing_method"] is None
    assert body["identified_on"] == IDENTIFIED.isoformat() and body["cleared_on"] is None
    stored = await session.get(MonitoringCase, uuid.UUID(case["id"]), populate_existing=True)
    assert stored is not None and stored.open_household_id == household.id
    # The clearance starts again from the village, this time as natural.
    response = await take(client, world, case["id"], "clearance_village_review", method="natural")
    assert response.json()["clearing_method"] == "natural"
    assert len(response.json()["steps"]) == 6


async def test_clearing_is_refused_while_the_clearing_rule_holds_reasons(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await make_household(session, village=VILLAGE_A1, origin="ordinary")
    case = await opened(client, world, household, category="marginal")
    await taken(client, world, case["id"], *IDENTIFICATION)  # identified today

    before = await session.scalar(select(func.count()).select_from(MonitoringStep))
    response = await take(client, world, case["id"], "clearance_village_review")
    body = problem(response, 422, "clearing_blocked")
    codes = [reason["code"] for reason in body["reasons"]]
    assert codes[0] == "too_soon"
    assert {"income_below_threshold", "no_measure", "no_labour"} <= set(codes)
    assert all(reason["detail"] for reason in body["reasons"])
    assert "too_soon" in body["detail"]
    # Nothing written.
    assert await session.scalar(select(func.count()).select_from(MonitoringStep)) == before
    stored = await session.get(MonitoringCase, uuid.UUID(case["id"]), populate_existing=True)
    assert stored is not None and stored.status == "identified"
    assert stored.clearing_method is None
    # A rejected clearance review is not judged by the rule.
    rejected = await take(client, world, case["id"], "clearance_village_review", "reject")
    assert rejected.status_code == 201 and rejected.json()["status"] == "identified"


async def test_clearing_is_judged_again_at_each_approval(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    household = await clearable_household(session, world)
    case = await opened(client, world, household, category="marginal", found_on="2026-01-02")
    freeze_today(monkeypatch, IDENTIFIED)
    await taken(client, world, case["id"], *IDENTIFICATION)
    freeze_today(monkeypatch, CLEARED)
    await taken(client, world, case["id"], "clearance_village_review", "clearance_town_review")
    # Meanwhile the only working member is recorded as no longer able to work.
    head = await session.scalar(
        select(Member).where(col(Member.household_id) == household.id, Member.relation == "head")
    )
    assert head is not None
    head.labour = "none"
    await session.flush()
    response = await take(client, world, case["id"], "clearance_county_approval")
    body = problem(response, 422, "clearing_blocked")
    assert [reason["code"] for reason in body["reasons"]] == ["no_labour"]


async def test_method_only_with_an_approved_clearance_village_review(
    client: httpx.AsyncClient, world: World
) -> None:
    case = await opened(client, world, world.households["a1"])
    url = f"{CASES}/{case['id']}/steps"
    headers = world.headers("officer_a1")
    for body in [
        {"step": "village_review", "decision": "approve", "method": "assisted"},
        {"step": "clearance_village_review", "decision": "approve"},
        {"step": "clearance_village_review", "decision": "reject", "method": "natural"},
        {"step": "clearance_village_review", "decision": "approve", "method": "magic"},
    ]:
        response = await client.post(url, json=body, headers=headers)
        problem(response, 422, "validation_failed", "body.method")
    for body in [
        {"step": "approve_all", "decision": "approve"},
        {"step": "village_review", "decision": "maybe"},
        {"step": "village_review", "decision": "approve", "note": "x" * 2001},
        {"step": "village_review", "decision": "approve", "status": "identified"},
    ]:
        problem(await client.post(url, json=body, headers=headers), 422, "validation_failed")


async def test_steps_need_the_monitoring_scope(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    case = await opened(client, world, world.households["a1"])
    # A login that asked for reading only.
    family = TokenFamily(user_id=world.users["officer_a1"].id, scope="records:read")
    session.add(family)
    await session.flush()
    reader, _ = create_access_token(
        get_settings(),
        user_id=world.users["officer_a1"].id,
        family_id=family.id,
        role="officer",
        scope="records:read",
    )
    response = await client.post(
        f"{CASES}/{case['id']}/steps",
        json={"step": "village_review", "decision": "approve"},
        headers={"Authorization": f"Bearer {reader}"},
    )
    problem(response, 403, "insufficient_scope")
    assert (await take(client, world, case["id"], "village_review")).status_code == 201


# --- town staff ----------------------------------------------------------------------------------


async def test_town_staff_are_assigned_a_town(session: AsyncSession, world: World) -> None:
    def user(role: str, *regions: str) -> UserCreate:
        return UserCreate(
            username=f"u-{uuid.uuid4().hex[:8]}",
            password="long-enough-1",
            role=Role(role),
            regions=list(regions),
        )

    staff, created = await users_service.upsert_user(session, data=user("town_staff", TOWN_A1))
    assert created and staff.role == "town_staff"
    for role, region, wanted in [
        ("town_staff", VILLAGE_A1, "assigned a town"),
        ("town_staff", COUNTY_A, "assigned a town"),
        ("officer", TOWN_A1, "assigned villages"),
        ("county_admin", TOWN_A1, "assigned a county"),
    ]:
        with pytest.raises(users_service.UserRegionError, match=wanted):
            await users_service.upsert_user(session, data=user(role, region))


async def test_town_staff_read_everything_under_their_town(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a3 = await make_household(session, village=VILLAGE_A3)
    headers = world.headers("town_a1")
    listed = (await client.get(f"{API}/households", headers=headers)).json()
    ids = {item["id"] for item in listed["items"]}
    assert ids == {str(world.households["a1"].id), str(world.households["a2"].id)}
    for household, status in [(world.households["a2"], 200), (a3, 404)]:
        response = await client.get(f"{API}/households/{household.id}", headers=headers)
        assert response.status_code == status
    a1 = world.households["a1"].id
    progress = await client.get(f"{API}/households/{a1}/progress", headers=headers)
    assert progress.status_code == 200, progress.text
    for region, status in [(TOWN_A1, 200), (VILLAGE_A2, 200), (TOWN_A2, 404), (VILLAGE_B1, 404)]:
        response = await client.get(f"{API}/regions/{region}/progress", headers=headers)
        assert response.status_code == status, (region, response.text)
    town = (await client.get(f"{API}/regions/{TOWN_A1}/progress", headers=headers)).json()
    assert town["code"] == TOWN_A1
    assert {child["code"] for child in town["children"]} == {VILLAGE_A1, VILLAGE_A2}
    visits = await client.get(
        f"{API}/households/{world.households['a2'].id}/visits", headers=headers
    )
    assert visits.status_code == 200


def test_the_next_step_table_agrees_with_the_procedure() -> None:
    from app.monitoring.steps import TRANSITIONS
    from app.monitoring.vocabulary import NEXT_STEP

    assert {t.at: t.step for t in TRANSITIONS.values()} == NEXT_STEP


async def test_cases_awaiting_my_step_name_the_step(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    household = await make_household(session, village=VILLAGE_A1)
    case = await opened(client, world, household)
    assert case["next_step"] == "village_review"
    other = await make_household(session, village=VILLAGE_A1)
    reviewed = await taken(
        client, world, (await opened(client, world, other))["id"], "village_review"
    )
    assert reviewed["next_step"] == "town_review"

    async def awaiting(who: str) -> set[str]:
        response = await client.get(
            CASES, params={"awaiting_my_step": "true"}, headers=world.headers(who)
        )
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await awaiting("officer_a1") == {case["id"]}
    assert await awaiting("town_a1") == {reviewed["id"]}
    assert await awaiting("admin_a") == set()
