"""deceased_member_listed (死亡人员未销户): a department reported a death, the member is still
listed. The issue holds until the member is removed (or the report is verified as wrong)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.base import utcnow
from app.core.config import get_settings
from app.households import id_numbers
from app.households.models import Household, Member
from app.monitoring.models import MonitoringAlert
from tests.builders import COUNTY_A, ID_HEAD_A1, VILLAGE_A2, World, make_household, make_id_number

URL = "/api/v1/quality/issues"
KIND = "deceased_member_listed"


async def add_alert(
    session: AsyncSession, world: World, member: Member, household: Household, **fields: Any
) -> MonitoringAlert:
    assert member.id_number is not None
    alert = MonitoringAlert(
        county_code=COUNTY_A,
        department=fields.pop("department", "public_security"),
        id_number_hash=id_numbers.search_hash(member.id_number, key=get_settings().pii_hash_key),
        kind=fields.pop("kind", "death"),
        occurred_on=fields.pop("occurred_on", date(2026, 2, 1)),
        household_id=household.id,
        member_id=member.id,
        village_code=household.village_code,
        imported_by=world.users["admin_a"].id,
        **fields,
    )
    session.add(alert)
    await session.flush()
    return alert


async def issues(client: httpx.AsyncClient, world: World) -> tuple[list[dict[str, Any]], int]:
    response = await client.get(URL, params={"kind": KIND}, headers=world.headers("admin_a"))
    assert response.status_code == 200, response.text
    body = response.json()
    return body["items"], body["counts"]["by_kind"][KIND]


async def member_named(session: AsyncSession, household: Household, name: str) -> Member:
    member = await session.scalar(
        select(Member).where(col(Member.household_id) == household.id, col(Member.name) == name)
    )
    assert member is not None
    return member


async def test_a_reported_death_is_an_issue_until_the_member_is_removed(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    household = world.households["a1"]
    head = await member_named(session, household, "张建国")
    assert head.id_number == ID_HEAD_A1
    await add_alert(session, world, head, household, occurred_on=date(2026, 2, 1))
    # A second department reporting the same death: still one issue for the member.
    await add_alert(
        session, world, head, household, department="civil_affairs", occurred_on=date(2026, 2, 3)
    )
    # Other kinds of alert are no such issue.
    spouse = await member_named(session, household, "李秀英")
    await add_alert(session, world, spouse, household, kind="large_medical_expense")

    items, count = await issues(client, world)

    assert count == 1 and len(items) == 1
    issue = items[0]
    assert (issue["record_type"], issue["record_id"]) == ("member", str(head.id))
    assert issue["href"] == f"/api/v1/households/{household.id}/members/{head.id}"
    assert "张建国" in issue["detail"] and "2026-02-01" in issue["detail"]
    assert "2 department alerts" in issue["detail"]
    assert ID_HEAD_A1 not in issue["detail"]

    head.removed_at, head.removed_reason = utcnow(), "death"
    await session.flush()

    assert await issues(client, world) == ([], 0)


async def test_a_death_verified_as_wrong_is_no_issue_and_ordinary_households_count(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    number = make_id_number(5, "19400101")
    ordinary = await make_household(
        session,
        village=VILLAGE_A2,
        origin="ordinary",
        members=[{"name": "刘老汉", "id_number": number, "relation": "head"}],
    )
    assert ordinary.status is None
    elder = await member_named(session, ordinary, "刘老汉")
    alert = await add_alert(session, world, elder, ordinary)

    items, count = await issues(client, world)
    assert count == 1 and items[0]["household_id"] == str(ordinary.id)
    # Officer of village A1 does not see village A2's issue.
    mine = await client.get(URL, params={"kind": KIND}, headers=world.headers("officer_a1"))
    assert mine.json()["items"] == []

    alert.status, alert.outcome = "verified", "no_risk"
    alert.verified_by, alert.verified_at = world.users["officer_a2"].id, utcnow()
    await session.flush()

    assert await issues(client, world) == ([], 0)
    assert uuid.UUID(items[0]["record_id"]) == elder.id
