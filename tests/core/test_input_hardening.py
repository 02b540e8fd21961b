"""Odd input gets a 4xx naming the problem, never a 500."""

from __future__ import annotations

import uuid

import pytest

from app.households import id_numbers
from app.regions import codes
from tests.builders import World


@pytest.mark.parametrize(
    "value",
    [
        "１１０１０５１９４９１２３１００２X",  # full-width digits
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",  # Arabic-Indic digits
    ],
)
def test_id_numbers_take_ascii_digits_only(value: str) -> None:
    with pytest.raises(id_numbers.InvalidIdNumber):
        id_numbers.normalize(value)


@pytest.mark.parametrize("value", ["371522101299\n", "371522101２99", " 371522101201"])
def test_division_codes_take_ascii_digits_only(value: str) -> None:
    with pytest.raises(codes.InvalidCode):
        codes.level_of(value)


async def test_nul_characters_are_refused(client, world: World) -> None:  # type: ignore[no-untyped-def]
    headers = world.headers("admin_a")
    listing = await client.get("/api/v1/households", params={"q": "a\x00b"}, headers=headers)
    assert listing.status_code == 200 or listing.status_code == 422
    if listing.status_code == 422:  # PostgreSQL cannot store or compare NUL
        assert listing.json()["code"] == "invalid_character"
    token = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "a\x00b", "password": "x"},
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_out_of_range_times_are_422(client, world: World, moment: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.get(
        "/api/v1/households", params={"updated_since": moment}, headers=world.headers("admin_a")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.updated_since"
    visit = await client.put(
        f"/api/v1/visits/{uuid.uuid4()}",
        json={
            "revision": 1,
            "household_id": str(world.households["a1"].id),
            "visited_at": moment,
            "mode": "phone",
        },
        headers=world.headers("officer_a1"),
    )
    assert visit.status_code == 422
    assert visit.json()["errors"][0]["field"] == "body.visited_at"


async def test_if_match_star_is_not_accepted(client, world: World) -> None:  # type: ignore[no-untyped-def]
    household = world.households["a1"]
    response = await client.patch(
        f"/api/v1/households/{household.id}",
        json={"head_name": "改名"},
        headers={**world.headers("admin_a"), "If-Match": "*"},
    )
    assert response.status_code == 428
    assert response.json()["current_etag"] == f'"v{household.version}"'


@pytest.mark.parametrize("path", ["/api/v1/regions/37152210120%0A", "/api/v1/regions?parent=abc"])
async def test_region_codes_in_urls_are_checked(client, world: World, path: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.get(path, headers=world.headers("admin_a"))
    assert response.status_code == 422


async def test_personal_answers_are_not_cached_by_shared_caches(client, world: World) -> None:  # type: ignore[no-untyped-def]
    response = await client.get(
        f"/api/v1/households/{world.households['a1'].id}", headers=world.headers("admin_a")
    )
    assert response.headers["Cache-Control"] == "private, no-cache"
    # Large answers are gzip-compressed too: Vary also names Accept-Encoding.
    assert "Authorization" in [v.strip() for v in response.headers["Vary"].split(",")]


def _cursor(*values: str) -> str:
    from app.core.pagination import encode_cursor

    return encode_cursor(list(values))


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00"]
)
@pytest.mark.parametrize("list_", ["visits", "income-snapshots", "measures", "timeline"])
async def test_tampered_datetime_cursors_are_422(
    client, world: World, when: str, list_: str
) -> None:  # type: ignore[no-untyped-def]
    cursor = _cursor(when, "00000000-0000-0000-0000-000000000000")
    response = await client.get(
        f"/api/v1/households/{world.households['a1'].id}/{list_}",
        params={"cursor": cursor},
        headers=world.headers("officer_a1"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "query.cursor"


async def test_oversized_bodies_are_413(client, world: World) -> None:  # type: ignore[no-untyped-def]
    from app.core.config import get_settings

    limit = get_settings().max_body_bytes
    url = f"/api/v1/visits/{uuid.uuid4()}"
    big = b'{"findings": "' + b"x" * limit + b'"}'
    declared = await client.put(
        url,
        content=big,
        headers={**world.headers("officer_a1"), "Content-Type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"
    assert declared.json()["limit_bytes"] == limit

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await client.put(
        url,
        content=chunks(),
        headers={**world.headers("officer_a1"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["limit_bytes"] == limit


async def test_a_forged_line_in_the_path_stays_one_escaped_log_line(  # type: ignore[no-untyped-def]
    client, caplog
) -> None:
    """%0d%0a in a path must not write a line of its own into the access log (issue 17)."""
    import logging

    forged = "/api/v1/x%0d%0a2026-12-07 INFO fieldsync.access GET /admin 200 1.0ms rid=forged"
    with caplog.at_level(logging.INFO, logger="fieldsync.access"):
        await client.get(forged, headers={"X-Request-ID": "abc\x7fdef"})
    lines = [r.getMessage() for r in caplog.records if r.name == "fieldsync.access"]
    assert len(lines) == 1
    assert "\r" not in lines[0] and "\n" not in lines[0]
    assert "\\r\\n2026-12-07 INFO" in lines[0]
    assert "rid=abc\\x7fdef" in lines[0]


@pytest.mark.parametrize("revision", [True, 100.0, "3", 1.5])
async def test_a_revision_is_a_json_integer_only(  # type: ignore[no-untyped-def]
    client, world: World, revision: object
) -> None:
    """Issue 17: `revision: true` and `100.0` were taken as 1 and 100."""
    from tests.records.bodies import visit_body

    body = visit_body(world.households["a1"].id, revision=1)
    body["revision"] = revision
    response = await client.put(
        f"/api/v1/visits/{uuid.uuid4()}", json=body, headers=world.headers("officer_a1")
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.revision"]


@pytest.mark.parametrize("amount", ["１２", " 12 ", "1e3", "-0", "12.", "+12", True])
async def test_money_is_plain_ascii_digits(  # type: ignore[no-untyped-def]
    client, world: World, amount: object
) -> None:
    """Issue 17: full-width digits, spaces, exponents and signs were read as amounts."""
    from tests.records.bodies import snapshot_body

    body = snapshot_body(world.households["a1"].id, wage_income=amount)
    response = await client.put(
        f"/api/v1/income-snapshots/{uuid.uuid4()}", json=body, headers=world.headers("officer_a1")
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.wage_income"]


@pytest.mark.parametrize("amount", ["12", "12.5", "12.50", 12, 12.5, "0"])
async def test_plain_amounts_are_accepted(  # type: ignore[no-untyped-def]
    client, world: World, amount: object
) -> None:
    from tests.records.bodies import snapshot_body

    body = snapshot_body(world.households["a1"].id, wage_income=amount)
    response = await client.put(
        f"/api/v1/income-snapshots/{uuid.uuid4()}", json=body, headers=world.headers("officer_a1")
    )
    assert response.status_code == 201, response.text
