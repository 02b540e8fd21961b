"""What an API client may do on every /api/v1 route: read its region with its scopes, never
write, never see personal data without pii:read.

The expectations derive from the authorization matrix: a client of village A1 reads what
officer_a1 reads there, a client of village A2 what officer_a2 does; every write is refused
with 403 (clients hold no write scope; subscribing to webhooks is no write of data). The
exceptions are listed with their reason. A route added to the matrix is covered here too.
"""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.photos.models import Photo
from app.records.models import Visit
from tests import test_authz_matrix as matrix
from tests.builders import ID_HEAD_A1, ID_SPOUSE_A1, PHONE_A1, VILLAGE_A1, VILLAGE_A2, World
from tests.clients.builders import API, READ_ONLY, bearer_for, make_client, minted_token
from tests.test_authz_matrix import PHOTO_SHA, TABLE, VISIT_ID, Ctx, _check_household, send

# The matrix's world, built once per module, each test in a savepoint of it.
built = matrix.built
session = matrix.session
world = matrix.world
ctx = matrix.ctx
media_dir = matrix.media_dir

CLIENTS = ("client_a1", "client_a2")
ADDRESS = "燕店镇王庄村三组18号"
# Like the officer of the same village, except:
EXCEPTIONS: dict[tuple[str, str], dict[str, int]] = {
    # The original photo carries its EXIF position: pii:read.
    ("GET", "/api/v1/photos/{sha256}/content"): {"client_a1": 403, "client_a2": 404},
    # The stored answer of a batch is for the phone that sent it.
    ("GET", "/api/v1/sync/batches/{batch_id}"): {"client_a1": 404, "client_a2": 404},
    # sync:read lets a client see the sync status and conflicts of its region.
    ("GET", "/api/v1/sync/status"): {"client_a1": 200, "client_a2": 200},
    ("GET", "/api/v1/sync/conflicts"): {"client_a1": 200, "client_a2": 200},
    # A tus HEAD is the uploader's, part of writing.
    ("HEAD", "/api/v1/uploads/{upload_id}"): {"client_a1": 403, "client_a2": 403},
    # A client subscribes to webhooks of its own region (a subscription, not data), and sees
    # only its own: the county admin's is not found.
    ("POST", "/api/v1/webhooks"): {"client_a1": 201, "client_a2": 422},
    ("GET", "/api/v1/webhooks"): {"client_a1": 200, "client_a2": 200},
    ("GET", "/api/v1/webhooks/{webhook_id}"): {"client_a1": 404, "client_a2": 404},
    ("POST", "/api/v1/webhooks/{webhook_id}/disable"): {"client_a1": 404, "client_a2": 404},
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): {"client_a1": 404, "client_a2": 404},
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): {"client_a1": 404, "client_a2": 404},
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): {
        "client_a1": 404,
        "client_a2": 404,
    },
}
# Reads sent with POST.
POST_READS = {("POST", "/api/v1/households/search")}
OFFICER = {"client_a1": "officer_a1", "client_a2": "officer_a2"}
# Where village A1's visit and photo were taken (exactly), and as a client sees it.
LAT, LON = 36.235678, 115.671834
COARSE = {"lat": 36.24, "lon": 115.67}


def expected(route: tuple[str, str], caller: str) -> int:
    entry = TABLE[route]
    if entry.public:
        return entry.expect[OFFICER[caller]]
    if route in EXCEPTIONS:
        return EXCEPTIONS[route][caller]
    if route[0] not in ("GET", "HEAD") and route not in POST_READS:
        return 403
    return entry.expect[OFFICER[caller]]


@pytest.fixture
async def clients(
    client: httpx.AsyncClient, session: AsyncSession, world: World, ctx: Ctx
) -> World:
    """Read-only clients (no pii:read) of villages A1 and A2 in `world.tokens`; the visit and
    the photo of village A1 with an exact position."""
    for name, village in (("client_a1", VILLAGE_A1), ("client_a2", VILLAGE_A2)):
        registered = await make_client(session, admin=world.users["admin_a"], region=village)
        world.tokens[name] = minted_token(registered)
    await session.execute(
        update(Visit)
        .where(Visit.id == VISIT_ID)
        .values(
            lat=LAT,
            lon=LON,
            crs="wgs84",
            # Free text places the house and holds numbers too.
            address=ADDRESS,
            findings=f"户主电话{PHONE_A1}, 身份证{ID_HEAD_A1}",
        )
    )
    await session.execute(update(Photo).where(Photo.sha256 == PHOTO_SHA).values(lat=LAT, lon=LON))
    await session.commit()
    return world


def _text(response: httpx.Response) -> str:
    """Everything the response shows, the sheets of a workbook included."""
    if response.content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            return "".join(book.read(name).decode("utf-8", "replace") for name in book.namelist())
    if response.headers.get("content-type", "").startswith("image/"):
        return ""
    return response.text


SECRETS = (
    ID_HEAD_A1,
    ID_SPOUSE_A1,
    PHONE_A1,
    str(LAT),
    str(LON),
    "36.2356",
    "115.6718",
    "三组18号",
)
CASES = [(route, caller) for route in TABLE for caller in CLIENTS]


@pytest.mark.parametrize(
    ("route", "caller"),
    CASES,
    ids=[f"{m} {p.removeprefix(API)} as {c}" for (m, p), c in CASES],
)
async def test_client_access(
    client: httpx.AsyncClient, clients: World, ctx: Ctx, route: tuple[str, str], caller: str
) -> None:
    entry = TABLE[route]
    want = expected(route, caller)

    response = await send(client, clients, ctx, route, caller)

    assert response.status_code == want, response.text
    if want >= 400 and route[0] != "HEAD" and not entry.public:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == want
    if want == 403 and route[0] not in ("GET", "HEAD") and route not in POST_READS:
        # Refused for its scopes or its role, before anything is looked at.
        assert response.json()["code"] in ("insufficient_scope", "forbidden")
    if entry.effect is not None:
        assert await entry.effect(client, clients, ctx) is (response.status_code < 300)
    # Acceptance: no full ID number, phone or exact position, whatever the route.
    shown = _text(response)
    for secret in SECRETS:
        assert secret not in shown, (secret, shown[:500])


async def test_a_client_sees_its_region_only(
    client: httpx.AsyncClient, clients: World, ctx: Ctx
) -> None:
    for caller, number in (("client_a1", "3715221012010001"), ("client_a2", "3715221012020001")):
        page = await client.get(f"{API}/households", headers=clients.headers(caller))
        assert page.status_code == 200, page.text
        assert [h["number"] for h in page.json()["items"]] == [number]
    # Another village's household: 404, as for a user.
    other = await client.get(
        f"{API}/households/{ctx.household_id}", headers=clients.headers("client_a2")
    )
    assert other.status_code == 404, other.text
    assert other.json()["code"] == "household_not_found"


async def test_without_pii_read_everything_personal_is_masked(
    client: httpx.AsyncClient, clients: World, ctx: Ctx
) -> None:
    headers = clients.headers("client_a1")
    household = await client.get(f"{API}/households/{ctx.household_id}", headers=headers)
    assert household.status_code == 200, household.text
    _check_household(household.json(), masked=True)

    visit = await client.get(f"{API}/visits/{ctx.visit_id}", headers=headers)
    assert visit.status_code == 200, visit.text
    assert visit.json()["location"] == {**COARSE, "accuracy_m": None, "crs": "wgs84"}
    listed = await client.get(f"{API}/households/{ctx.household_id}/visits", headers=headers)
    assert listed.json()["items"][0]["location"]["lat"] == COARSE["lat"]

    photo = await client.get(f"{API}/photos/{PHOTO_SHA}", headers=headers)
    assert photo.status_code == 200, photo.text
    assert photo.json()["location"] == COARSE
    content = await client.get(f"{API}/photos/{PHOTO_SHA}/content", headers=headers)
    assert content.status_code == 403, content.text
    assert content.json()["code"] == "insufficient_scope"
    thumbnail = await client.get(f"{API}/photos/{PHOTO_SHA}/thumbnail", headers=headers)
    assert thumbnail.status_code == 200, thumbnail.text


async def test_with_pii_read_a_client_sees_them_in_full(
    client: httpx.AsyncClient, session: AsyncSession, clients: World, ctx: Ctx
) -> None:
    registered = await make_client(
        session,
        admin=clients.users["admin_a"],
        region=VILLAGE_A1,
        scopes=(*READ_ONLY, "pii:read"),
    )
    headers = await bearer_for(client, registered)

    household = await client.get(f"{API}/households/{ctx.household_id}", headers=headers)
    _check_household(household.json(), masked=False)
    visit = await client.get(f"{API}/visits/{ctx.visit_id}", headers=headers)
    assert visit.json()["location"]["lat"] == LAT
    photo = await client.get(f"{API}/photos/{PHOTO_SHA}", headers=headers)
    assert photo.json()["location"] == {"lat": LAT, "lon": LON}
    content = await client.get(f"{API}/photos/{PHOTO_SHA}/content", headers=headers)
    assert content.status_code == 200, content.text


async def test_a_client_cannot_write(client: httpx.AsyncClient, clients: World, ctx: Ctx) -> None:
    """Even a write the route would allow any reader's role: no client holds a write scope."""
    response = await client.patch(
        f"{API}/households/{ctx.household_id}",
        headers=clients.headers("client_a1") | {"If-Match": '"v1"'},
        json={"group_name": "三组"},
    )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "insufficient_scope"
