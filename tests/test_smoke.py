from tests.builders import World


async def test_officer_lists_own_village(client, world: World) -> None:
    response = await client.get("/api/v1/households", headers=world.headers("officer_a1"))
    assert response.status_code == 200, response.text
    numbers = [h["number"] for h in response.json()["items"]]
    assert numbers == ["3715221012010001"]
