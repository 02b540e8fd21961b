"""monitoring.case_identified and monitoring.case_cleared: what the step endpoint emits.

The procedure itself (app.monitoring) publishes `CaseIdentified` and `CaseCleared` at the
county's approvals; here a case row is written directly and the events are published.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.events import publish
from app.households.models import Household
from app.monitoring.events import CaseCleared, CaseIdentified
from app.monitoring.models import MonitoringCase
from app.webhooks.models import WebhookDelivery, WebhookEvent
from app.webhooks.outbox import dispatch_events
from app.webhooks.vocabulary import EVENT_SCOPES, EventType
from tests.builders import COUNTY_A, ID_HEAD_A1, PHONE_A1, VILLAGE_A1, World
from tests.webhooks.helpers import (
    events,
    fast_settings,
    listening,
    make_webhook,
    session_transactions,
)

DESCRIPTION = f"户主张建国({ID_HEAD_A1}, 电话{PHONE_A1})住院, 自付医疗费用8万元"


async def make_case(session: AsyncSession, world: World, household: Household) -> MonitoringCase:
    officer = world.users["officer_a1"]
    case = MonitoringCase(
        id=uuid.uuid4(),
        household_id=household.id,
        revision=1,
        content_hash=hashlib.sha256(b"case").hexdigest(),
        author_id=officer.id,
        updated_by=officer.id,
        category="sudden_hardship",
        risk_types=["illness", "high_rigid_expenses"],
        found_via="cadre_visit",
        found_on=date(2026, 3, 2),
        description=DESCRIPTION,
        status="identified",
        identified_on=date(2026, 3, 20),
        open_household_id=household.id,
    )
    session.add(case)
    await session.flush()
    return case


def _no_personal_data(event: WebhookEvent) -> None:
    text = str(event.data)
    for secret in (ID_HEAD_A1, PHONE_A1, "张建国", "住院", ID_HEAD_A1[6:14]):
        assert secret not in text, secret


async def test_identified_and_cleared_carry_the_case_and_no_personal_data(
    world: World, session: AsyncSession
) -> None:
    await listening(session, world)  # events are written while a webhook is active
    household = world.households["a1"]
    case = await make_case(session, world, household)

    await publish(session, CaseIdentified(case=case, household=household))
    case.status, case.cleared_on, case.clearing_method = "cleared", date(2026, 10, 9), "assisted"
    case.open_household_id = None
    await publish(session, CaseCleared(case=case, household=household))

    identified, cleared = await events(session)
    assert (identified.type, cleared.type) == (
        "monitoring.case_identified",
        "monitoring.case_cleared",
    )
    for event in (identified, cleared):
        assert event.household_id == household.id
        assert event.region_code == VILLAGE_A1
        assert event.dispatched_at is None
        _no_personal_data(event)
    common = {
        "household_id": str(household.id),
        "case_id": str(case.id),
        "village_code": VILLAGE_A1,
        "category": "sudden_hardship",
        "risk_types": ["illness", "high_rigid_expenses"],
        "found_via": "cadre_visit",
        "identified_on": "2026-03-20",
    }
    assert identified.data == {
        **common,
        "status": "identified",
        "cleared_on": None,
        "clearing_method": None,
    }
    assert cleared.data == {
        **common,
        "status": "cleared",
        "cleared_on": "2026-10-09",
        "clearing_method": "assisted",
    }
    assert identified.occurred_at <= cleared.occurred_at


async def test_case_events_go_to_owners_who_read_records(
    world: World, session: AsyncSession
) -> None:
    assert EVENT_SCOPES[EventType.monitoring_case_identified] == "records:read"
    assert EVENT_SCOPES[EventType.monitoring_case_cleared] == "records:read"
    admin = world.users["admin_a"]
    wanted = ["monitoring.case_identified", "monitoring.case_cleared"]
    reads_records = await make_webhook(
        session, owner=admin, regions=(COUNTY_A,), event_types=wanted
    )
    others = await make_webhook(
        session, owner=admin, regions=(COUNTY_A,), event_types=["visit.created"]
    )
    household = world.households["a1"]
    case = await make_case(session, world, household)
    await publish(session, CaseIdentified(case=case, household=household))
    await session.flush()

    await dispatch_events(session_transactions(session), fast_settings())

    rows = await session.execute(
        select(WebhookDelivery.webhook_id, WebhookEvent.type).join(
            WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id)
        )
    )
    assert sorted((w, t) for w, t in rows) == [(reads_records.id, "monitoring.case_identified")]
    assert others.id != reads_records.id
