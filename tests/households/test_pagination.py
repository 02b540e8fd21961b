"""Acceptance 5: 600 households by pages of 100, each exactly once, in a stable order, also while
households are being edited between page requests."""

import random
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.households.models import Household
from tests.builders import VILLAGE_A1, VILLAGE_A2, VILLAGE_A3, World

URL = "/api/v1/households"
VILLAGES = [VILLAGE_A1, VILLAGE_A2, VILLAGE_A3]


@pytest.fixture
async def six_hundred(session: AsyncSession, world: World) -> dict[str, uuid.UUID]:
    """600 more households in county A, inserted in an order unlike their numbers'."""
    rng = random.Random(600)
    specs = [(VILLAGES[i % 3], f"{VILLAGES[i % 3]}{i + 100:04d}") for i in range(600)]
    rng.shuffle(specs)
    households = [
        Household(
            number=number,
            village_code=village,
            head_name=f"户主{i}",
            attribute="general",
            status="in_poverty",
            main_cause=rng.choice(["illness", "disability", "lack_labour"]),
            identified_year=2014 + i % 5,
        )
        for i, (village, number) in enumerate(specs)
    ]
    session.add_all(households)
    await session.flush()
    everything = {h.number: h.id for h in households}
    everything.update({h.number: h.id for h in world.households.values()})
    await session.commit()  # releases the savepoint only: rolled back after the test
    return everything


async def get_page(client: httpx.AsyncClient, world: World, cursor: str | None) -> Any:
    params: dict[str, Any] = {"limit": 100}
    if cursor is not None:
        params["cursor"] = cursor
    response = await client.get(URL, params=params, headers=world.headers("admin_a"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["items"]) <= 100
    return body


async def test_600_households_by_pages_of_100(
    client: httpx.AsyncClient, world: World, six_hundred: dict[str, uuid.UUID]
) -> None:
    county_a = sorted(n for n in six_hundred if n.startswith("371522"))
    assert len(county_a) == 602  # the 600 and the world's a1 and a2
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        body = await get_page(client, world, cursor)
        pages += 1
        seen += [h["number"] for h in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 7
    assert len(seen) == len(set(seen))
    assert seen == county_a  # each exactly once, by household number

    # The same walk again gives the same pages.
    again: list[str] = []
    cursor = None
    while True:
        body = await get_page(client, world, cursor)
        again += [h["number"] for h in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert again == seen


async def test_pages_stay_exact_while_households_are_edited(
    client: httpx.AsyncClient, world: World, six_hundred: dict[str, uuid.UUID]
) -> None:
    county_a = sorted(n for n in six_hundred if n.startswith("371522"))
    rng = random.Random(5)
    versions: dict[str, int] = {}
    edited_ahead: dict[str, str] = {}

    async def edit(number: str, head_name: str) -> None:
        version = versions.get(number, 1)
        response = await client.patch(
            f"{URL}/{six_hundred[number]}",
            json={"head_name": head_name, "status": rng.choice(["in_poverty", "returned", "new"])},
            headers={**world.headers("admin_a"), "If-Match": f'"v{version}"'},
        )
        assert response.status_code == 200, response.text
        versions[number] = version + 1

    seen: list[str] = []
    items: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        body = await get_page(client, world, cursor)
        for item in body["items"]:
            seen.append(item["number"])
            items[item["number"]] = item
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # Between pages, edit households not yet seen (first and last of what is left, and
        # some at random) and some already seen.
        ahead = [n for n in county_a if n > seen[-1]]
        for number in {ahead[0], ahead[-1], *rng.sample(ahead, min(3, len(ahead)))}:
            edited_ahead[number] = f"改{len(edited_ahead)}"
            await edit(number, edited_ahead[number])
        for number in rng.sample(seen, 5):
            await edit(number, "已看过")

    assert len(seen) == len(set(seen))
    assert seen == county_a
    assert len(edited_ahead) >= 20
    # The households edited before their page came were listed once, as edited.
    for number, head_name in edited_ahead.items():
        assert items[number]["head_name"] == head_name
        assert items[number]["version"] >= 2
