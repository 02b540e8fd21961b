"""Setting a household lifted needs the exit rule, or the county admin's override reason.

The exit rule is the household progress's (`GET /households/{id}/progress`, `exit`): the
same rule decides here, on PATCH, in sync batches and in conflict resolution alike.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.households.models import Household, HouseholdChange
from app.webhooks.models import WebhookEvent
from tests.assertions import problem
from tests.builders import VILLAGE_A1, World, make_household, make_id_number
from tests.records.bodies import put, snapshot_body, visit_body
from tests.sync.helpers import batch, household_edit, phone_headers, send
from tests.webhooks.helpers import listening

URL = "/api/v1/households"
REASON = "2020年脱贫验收已通过, 收入核算待补录"


async def patch(
    client: httpx.AsyncClient,
    world: World,
    household_id: Any,
    body: dict[str, Any],
    *,
    who: str = "admin_a",
    version: int = 1,
) -> httpx.Response:
    return await client.patch(
        f"{URL}/{household_id}",
        json=body,
        headers={**world.headers(who), "If-Match": f'"v{version}"'},
    )


async def status_of(session: AsyncSession, household_id: uuid.UUID) -> tuple[str | None, int]:
    row = (
        await session.execute(
            select(Household.status, Household.version).where(Household.id == household_id)
        )
    ).one()
    return row[0], row[1]


async def changes_of(session: AsyncSession, household_id: uuid.UUID) -> list[HouseholdChange]:
    return list(
        await session.scalars(
            select(HouseholdChange)
            .where(HouseholdChange.household_id == household_id)
            .order_by(HouseholdChange.version)
        )
    )


@pytest.mark.parametrize("who", ["officer_a1", "admin_a"])
@pytest.mark.parametrize("status", ["lifted", "lifted_no_support"])
async def test_an_exit_the_rule_does_not_support_is_refused_with_its_reasons(
    client: httpx.AsyncClient, session: AsyncSession, world: World, who: str, status: str
) -> None:
    a1 = world.households["a1"].id
    response = await patch(client, world, a1, {"status": status, "exit_year": 2020}, who=who)
    body = problem(response, 422, "exit_rule_not_met", "body.status")
    codes = [reason["code"] for reason in body["reasons"]]
    assert "no_snapshot" in codes and "indicator_unknown" in codes
    assert all(reason["detail"] for reason in body["reasons"])
    assert "override_reason" in body["detail"]
    assert await status_of(session, a1) == ("in_poverty", 1)


async def test_only_the_county_admin_may_give_a_reason(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a1 = world.households["a1"].id
    for who in ("officer_a1", "secretary_a1"):
        response = await patch(
            client, world, a1, {"status": "lifted", "override_reason": REASON}, who=who
        )
        problem(response, 403, "override_not_allowed", "body.override_reason")
    assert await status_of(session, a1) == ("in_poverty", 1)


@pytest.mark.parametrize(
    "body",
    [
        {"group_name": "三组", "override_reason": REASON},  # no status at all
        {"status": "returned", "override_reason": REASON},  # not an exit
        {"status": "lifted", "override_reason": "   "},  # blank
        {"status": "lifted", "override_reason": "x" * 501},
    ],
)
async def test_a_reason_goes_with_an_exit_only(
    client: httpx.AsyncClient, session: AsyncSession, world: World, body: dict[str, Any]
) -> None:
    a1 = world.households["a1"].id
    response = await patch(client, world, a1, body)
    problem(response, 422, "validation_failed", "body.override_reason")
    assert await status_of(session, a1) == ("in_poverty", 1)


async def test_the_county_admin_overrides_with_a_reason_kept_in_the_history(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    a1 = world.households["a1"].id
    body = {"status": "lifted", "exit_year": 2020, "override_reason": f"  {REASON} "}
    response = await patch(client, world, a1, body)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["version"]) == ("lifted", 2)
    assert "override_reason" not in response.json()

    (changed,) = await changes_of(session, a1)  # the world's households have no creation row
    assert changed.changes == {"status": ["in_poverty", "lifted"], "exit_year": [None, 2020]}
    assert (changed.status_from, changed.status_to) == ("in_poverty", "lifted")
    assert changed.override_reason == REASON
    assert changed.actor_id == world.users["admin_a"].id

    timeline = await client.get(f"{URL}/{a1}/timeline", headers=world.headers("officer_a1"))
    assert timeline.status_code == 200, timeline.text
    (event,) = [e for e in timeline.json()["items"] if e["type"] == "status_changed"]
    assert event["detail"] == {"from": "in_poverty", "to": "lifted", "override_reason": REASON}

    [status_event] = await session.scalars(
        select(WebhookEvent).where(WebhookEvent.type == "household.status_changed")
    )
    assert status_event.data["status_to"] == "lifted"
    assert REASON not in str(status_event.data)  # free text stays out of payloads

    # Later changes carry no reason; and from lifted on nothing is an exit any more.
    response = await patch(client, world, a1, {"status": "lifted_no_support"}, version=2)
    assert response.status_code == 200, response.text
    assert (await changes_of(session, a1))[-1].override_reason is None


@pytest.fixture
async def ready(client: httpx.AsyncClient, session: AsyncSession, world: World) -> Household:
    """A household of village A1 the exit rule lets go: income above the line in its two latest
    annual snapshots, every indicator ok on the latest visit, every member insured, the child
    at school."""
    household = await make_household(
        session,
        village=VILLAGE_A1,
        number="3715221012010201",
        head_name="周正",
        members=[
            {
                "name": "周正",
                "id_number": make_id_number(601, "19750101"),
                "relation": "head",
                "medical_insurance": True,
            },
            {
                "name": "周小红",
                "id_number": make_id_number(602, "20150601"),
                "relation": "child",
                "in_school": True,
                "medical_insurance": True,
            },
        ],
    )
    await session.commit()
    for year in (2019, 2020):
        body = snapshot_body(
            household.id,
            year=year,
            household_size=2,
            wage_income="30000.00",
            recorded_at=f"{year}-12-10T15:00:00+08:00",
        )
        assert (await put(client, world, "income_snapshot", body)).status_code == 201
    checks = dict.fromkeys(("food", "clothing", "education", "medical", "housing", "water"), "ok")
    visit = visit_body(household.id, checks=checks)
    assert (await put(client, world, "visit", visit)).status_code == 201
    return household


async def test_an_exit_the_rule_supports_needs_no_reason(
    client: httpx.AsyncClient, session: AsyncSession, world: World, ready: Household
) -> None:
    household_id = ready.id
    progress = await client.get(
        f"{URL}/{household_id}/progress", headers=world.headers("officer_a1")
    )
    assert progress.json()["exit"] == {"eligible": True, "reasons": []}, progress.text
    response = await patch(
        client, world, household_id, {"status": "lifted", "exit_year": 2020}, who="officer_a1"
    )
    assert response.status_code == 200, response.text
    assert (await changes_of(session, household_id))[-1].override_reason is None


async def test_a_batch_applies_the_same_rule(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    a1 = world.households["a1"].id
    officer = await phone_headers(session, world, "officer_a1")
    response = await send(client, batch([household_edit(a1, 1, {"status": "lifted"})]), officer)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", "exit_rule_not_met"), result
    assert [e["field"] for e in result["errors"]] == ["records.0.changes.status"]

    reasoned = household_edit(a1, 1, {"status": "lifted", "override_reason": REASON})
    response = await send(client, batch([reasoned]), officer)
    (result,) = response.json()["results"]
    assert (result["status"], result["code"]) == ("rejected", "override_not_allowed"), result

    admin = await phone_headers(session, world, "admin_a", device_id="android-admin-a")
    response = await send(client, batch([reasoned], device_id="android-admin-a"), admin)
    (result,) = response.json()["results"]
    assert result["status"] == "updated", result
    assert (await changes_of(session, a1))[-1].override_reason == REASON
