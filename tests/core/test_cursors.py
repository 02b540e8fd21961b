"""Made-up cursors on every list of the published document: a 422 naming `query.cursor`, never a
5xx, on both databases.

A cursor is opaque base64 JSON the API issued; a client (or the fuzzer) may send anything of the
right shape instead: numbers beyond any column's range, NUL characters a PostgreSQL text refuses,
long strings, times out of range. Each list must answer 422 (or an empty page, where the value is
merely one no row has), never reach the database with a value it cannot hold.
"""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import encode_cursor
from tests.builders import COUNTY_A, VILLAGE_A1, World
from tests.test_openapi import PUBLISHED
from tests.webhooks.helpers import make_webhook

DOCUMENT = json.loads(PUBLISHED.read_text())


def _paged_lists() -> list[str]:
    found = []
    for path, operations in DOCUMENT["paths"].items():
        get = operations.get("get")
        if get and any(p["name"] == "cursor" for p in get.get("parameters", [])):
            found.append(path)
    return found


LISTS = _paged_lists()
WEIRD = [
    "9" * 40,  # beyond a 64-bit integer
    "-" + "9" * 40,
    "1e400",
    "NaN",
    "nul\x00here",
    "\ud800",  # a lone surrogate
    "x" * 300,
    "0001-01-01T00:00:00+14:00",
    "2026-01-01T00:00:00+08:00",
    "00000000-0000-0000-0000-000000000000",
]


async def _path(path: str, session: AsyncSession, world: World) -> str:
    household = world.households["a1"]
    if "{webhook_id}" in path:
        webhook = await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
        path = path.replace("{webhook_id}", str(webhook.id))
    return (
        path.replace("{household_id}", str(household.id))
        .replace("{code}", VILLAGE_A1)
        .replace("{scope}", COUNTY_A)
        .replace("{year}", "2026")
    )


def _cursors() -> list[str]:
    cursors = []
    for size in (1, 2, 3):
        for value in WEIRD:
            cursors.append(encode_cursor([value] * size))
            if size > 1:  # a sound first key, the weird value after it
                cursors.append(encode_cursor(["2026-01-01T00:00:00+08:00", *[value] * (size - 1)]))
    return cursors


def test_the_document_has_paged_lists() -> None:
    assert len(LISTS) >= 15, LISTS


@pytest.mark.parametrize("path", LISTS)
async def test_a_made_up_cursor_is_never_a_server_error(  # type: ignore[no-untyped-def]
    client, session: AsyncSession, world: World, path: str
) -> None:
    url = await _path(path, session, world)
    # The change feed answers a cursor it did not issue with 410 cursor_gone (download afresh).
    refused = 410 if path == "/api/v1/sync/changes" else 422
    assert "{" not in url, f"no known value for a parameter of {path}"
    failures = []
    for cursor in _cursors():
        response = await client.get(
            url, params={"cursor": cursor}, headers=world.headers("admin_a")
        )
        if response.status_code not in (200, refused):
            failures.append(
                f"{response.status_code} {cursor_text(cursor)[:120]}: {response.text[:200]}"
            )
        elif response.status_code == 422:  # the field is named
            assert response.json()["errors"][0]["field"] == "query.cursor", response.text
    assert not failures, "\n".join(failures)


def cursor_text(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8", "replace")
