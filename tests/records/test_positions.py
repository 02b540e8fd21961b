"""Exact positions are personal data: coarsened without pii:read, never overwritten by the
coarse form a phone without pii:read sends back."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.households.privacy import coarse
from app.records.models import Visit
from tests.builders import World
from tests.records.bodies import API, put, visit_body

EXACT = {"lat": 36.235678, "lon": 115.671834, "accuracy_m": 8.0, "crs": "gcj02"}
COARSE = {"lat": 36.24, "lon": 115.67, "accuracy_m": None, "crs": "gcj02"}


def test_coarse_rounds_to_a_hundredth_of_a_degree() -> None:
    assert coarse(36.235678) == 36.24
    assert coarse(115.671834) == 115.67
    assert coarse(-0.001) == 0.0 and str(coarse(-0.001)) == "0.0"


async def test_the_secretary_sees_the_position_coarsened(
    client: httpx.AsyncClient, world: World
) -> None:
    visit_id = uuid.uuid4()
    body = visit_body(world.households["a1"].id, location=EXACT)
    created = await put(client, world, "visit", body, record_id=visit_id)
    assert created.status_code == 201, created.text
    assert created.json()["location"] == EXACT

    for who, shown in (("officer_a1", EXACT), ("admin_a", EXACT), ("secretary_a1", COARSE)):
        response = await client.get(f"{API}/visits/{visit_id}", headers=world.headers(who))
        assert response.status_code == 200, response.text
        assert response.json()["location"] == shown, who


async def test_a_coarse_position_sent_back_keeps_the_exact_one(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    visit_id = uuid.uuid4()
    household_id = world.households["a1"].id
    body = visit_body(household_id, location=EXACT)
    assert (await put(client, world, "visit", body, record_id=visit_id)).status_code == 201

    # The first secretary edits the visit as their phone received it: position coarsened.
    shown = await client.get(f"{API}/visits/{visit_id}", headers=world.headers("secretary_a1"))
    edited = {**body, "revision": 2, "findings": "补充: 已联系镇人社所", "location": COARSE}
    response = await put(client, world, "visit", edited, record_id=visit_id, who="secretary_a1")

    assert response.status_code == 200, response.text
    assert response.json()["location"] == shown.json()["location"] == COARSE
    stored = await session.get(Visit, visit_id, populate_existing=True)
    assert stored is not None and stored.revision == 2
    assert (stored.lat, stored.lon, stored.accuracy_m) == (36.235678, 115.671834, 8.0)
    assert stored.findings == "补充: 已联系镇人社所"

    # A position that really changed is stored as sent.
    moved = {**edited, "revision": 3, "location": {**COARSE, "lat": 36.25}}
    response = await put(client, world, "visit", moved, record_id=visit_id, who="secretary_a1")
    assert response.status_code == 200, response.text
    stored = await session.get(Visit, visit_id, populate_existing=True)
    assert stored is not None and (stored.lat, stored.lon, stored.accuracy_m) == (
        36.25,
        115.67,
        None,
    )


async def test_a_coarse_position_from_a_caller_who_saw_the_exact_one_is_an_edit(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    visit_id = uuid.uuid4()
    body = visit_body(world.households["a1"].id, location=EXACT)
    assert (await put(client, world, "visit", body, record_id=visit_id)).status_code == 201

    edited = {**body, "revision": 2, "location": COARSE}
    response = await put(client, world, "visit", edited, record_id=visit_id, who="officer_a1")

    assert response.status_code == 200, response.text
    stored = await session.get(Visit, visit_id, populate_existing=True)
    assert stored is not None and (stored.lat, stored.lon, stored.accuracy_m) == (
        36.24,
        115.67,
        None,
    )
