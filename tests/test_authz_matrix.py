"""Who may do what, on every /api/v1 route: one table, checked for every caller.

The object of every request lies in village A1 (household a1, its members and field records,
region VILLAGE_A1), or in county A for the thresholds a county admin sets.
A route missing from the table fails `test_table_covers_every_route`, so a new route cannot ship
without its authorization being decided and tested here.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.auth.principal import ROLE_SCOPES, Principal
from app.core.base import utcnow
from app.devices.models import Device
from app.households.models import Member
from app.main import create_app
from app.monitoring.models import MonitoringAlert
from app.photos.models import Photo, PhotoHolder, Upload
from app.photos.storage import LocalStorage, original_key, thumbnail_key
from app.records import service as records_service
from app.records.vocabulary import RecordType
from app.sync.models import HeldRecord, SyncBatch, SyncConflict
from app.thresholds.models import PovertyThreshold
from app.users.models import Role
from app.webhooks.models import WebhookDelivery, WebhookEvent
from tests.builders import (
    COUNTY_A,
    COUNTY_B,
    ID_HEAD_A1,
    ID_SPOUSE_A1,
    PASSWORD,
    PHONE_A1,
    TOWN_A1,
    TOWN_A2,
    TOWN_B1,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_A3,
    VILLAGE_B1,
    World,
    build_world,
)
from tests.clients.builders import make_client
from tests.databases import joined_session
from tests.photos.images import jpeg_bytes
from tests.photos.tus_helpers import metadata as tus_metadata
from tests.webhooks.helpers import make_webhook

API = "/api/v1"
CALLERS: tuple[str | None, ...] = (
    None,
    "officer_a1",  # officer of village A1
    "officer_a2",  # officer of another village of the same county
    "secretary_a1",  # first secretary of village A1
    "admin_a",  # county admin of county A
    "admin_b",  # county admin of another county
    "town_a1",  # town staff of town A1 (villages A1 and A2)
)
PROVINCE, CITY = "370000000000", "371500000000"
NEW_HOUSEHOLD_NUMBER = "3715221012019999"
NEW_VILLAGE = "371522101203"


# Field records of household a1, written by officer_a1 at revision 1 (fixed ids: each test
# rolls back, and the list routes can then say exactly what each caller must see).
VISIT_ID = uuid.UUID("00000000-0000-4000-8000-00000000a001")
SNAPSHOT_ID = uuid.UUID("00000000-0000-4000-8000-00000000a002")
MEASURE_ID = uuid.UUID("00000000-0000-4000-8000-00000000a003")
# officer_a1's phone, and one of county B (its admin's).
DEVICE_A1 = "android-officer-a1"
DEVICE_B = "android-admin-b"
# A batch officer_a1 sent, and the household conflict it left in village A1.
BATCH_ID = uuid.UUID("00000000-0000-4000-8000-00000000b001")
CONFLICT_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
# A visit of household a1 that batch held (as if village A1 had been taken from officer_a1).
HELD_ID = uuid.UUID("00000000-0000-4000-8000-00000000c002")
HELD_VISIT_ID = uuid.UUID("00000000-0000-4000-8000-00000000c003")
# A photo held for household a1 (named by its visit), and officer_a1's unfinished upload of
# another one; a third photo is what PUT /photos stores.
PHOTO = jpeg_bytes(48, 32, color=(10, 120, 60))
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()
UPLOADING = jpeg_bytes(40, 30, color=(90, 20, 160))
UPLOADING_SHA = hashlib.sha256(UPLOADING).hexdigest()
UPLOAD_ID = "0" * 31 + "1"
PUT_PHOTO = jpeg_bytes(36, 24, color=(250, 200, 10))
PUT_PHOTO_SHA = hashlib.sha256(PUT_PHOTO).hexdigest()
TUS = {"Tus-Resumable": "1.0.0"}
# An API client county A's admin registered for village A1.
CLIENT_ID = uuid.UUID("00000000-0000-4000-8000-00000000d001")
# county A's admin's webhook for village A1, and its delivery of a visit.created event.
WEBHOOK_ID = uuid.UUID("00000000-0000-4000-8000-00000000e001")
DELIVERY_ID = uuid.UUID("00000000-0000-4000-8000-00000000e002")
# A monitoring case of household a1 (officer_a1's, proposed), and a department alert about a1's
# spouse.
CASE_ID = uuid.UUID("00000000-0000-4000-8000-00000000f001")
# An education bureau's list naming a1's head, as a multipart upload.
ALERT_FILE = (
    b'--matrix\r\nContent-Disposition: form-data; name="file"; filename="alerts.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\n"
    b"department,id_number,kind,amount,occurred_on,note\r\n"
    + f"education,{ID_HEAD_A1},dropout,,2026-10-08,\r\n".encode()
    + b"\r\n--matrix--\r\n"
)
ALERT_ID = uuid.UUID("00000000-0000-4000-8000-00000000f002")
# The national register's list of one new household of village A1, as an .xlsx upload.
IMPORTED_HOUSEHOLD_NUMBER = "3715221012019998"


def _household_file() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(
        [
            "户编号",
            "行政区划代码",
            "姓名",
            "与户主关系",
            "贫困户属性",
            "首次识别时间",
            "主要致贫原因",
        ]
    )
    sheet.append(
        [IMPORTED_HOUSEHOLD_NUMBER, VILLAGE_A1, "周大勇", "户主", "一般贫困户", 2016, "因病"]
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return (
        b'--matrix\r\nContent-Disposition: form-data; name="file"; filename="households.xlsx"\r\n'
        b"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
        + buffer.getvalue()
        + b"\r\n--matrix--\r\n"
    )


HOUSEHOLD_FILE = _household_file()


@dataclass(frozen=True)
class Ctx:
    """Ids of the objects in village A1 the requests refer to."""

    household_id: uuid.UUID
    member_id: uuid.UUID
    user_id: uuid.UUID  # officer_a1's account
    visit_id: uuid.UUID = VISIT_ID
    snapshot_id: uuid.UUID = SNAPSHOT_ID
    measure_id: uuid.UUID = MEASURE_ID
    code: str = VILLAGE_A1
    # PUT /thresholds/{scope}/{year}: county A's own line for a year it has none yet.
    scope: str = COUNTY_A
    year: int = 2019
    device_id: str = DEVICE_A1
    batch_id: uuid.UUID = BATCH_ID
    conflict_id: uuid.UUID = CONFLICT_ID
    sha256: str = PHOTO_SHA
    upload_id: str = UPLOAD_ID
    put_sha256: str = PUT_PHOTO_SHA
    client_id: uuid.UUID = CLIENT_ID
    webhook_id: uuid.UUID = WEBHOOK_ID
    delivery_id: uuid.UUID = DELIVERY_ID
    case_id: uuid.UUID = CASE_ID
    alert_id: uuid.UUID = ALERT_ID
    held_id: uuid.UUID = HELD_ID


# What a successful write changed, read back by admin_a: True when the change is there.
Effect = Callable[[httpx.AsyncClient, World, Ctx], Awaitable[bool]]


def expect(
    no_token: int,
    officer_a1: int,
    officer_a2: int,
    secretary_a1: int,
    admin_a: int,
    admin_b: int,
    town_a1: int,
) -> dict[str | None, int]:
    return dict(
        zip(
            CALLERS,
            (no_token, officer_a1, officer_a2, secretary_a1, admin_a, admin_b, town_a1),
            strict=True,
        )
    )


Body = dict[str, Any] | Callable[[Ctx], dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    expect: dict[str | None, int]
    # A fixed body, or one made from the ids of the objects (record bodies name their household).
    json: Body | None = None
    form: dict[str, str] | None = None
    if_match: bool = False
    # A documented exception to "no token → 401": the OAuth endpoints authenticate by their body.
    public: bool = False
    # List routes: what each caller must see, exactly (only their own data).
    sees: Callable[[Any], set[str]] | None = None
    own: dict[str | None, set[str]] = field(default_factory=dict)
    # Write routes: whether the change is there afterwards (must match success).
    effect: Effect | None = None
    # Raw bodies (uploads) and the headers they need, fixed or made from the ids.
    content: bytes | None = None
    headers: dict[str, str] | Callable[[Ctx], dict[str, str]] | None = None
    params: Callable[[Ctx], dict[str, str]] | None = None
    # Path ids other than the ctx's defaults.
    ids: Callable[[Ctx], dict[str, str]] | None = None


async def _admin_get(client: httpx.AsyncClient, world: World, url: str) -> httpx.Response:
    return await client.get(API + url, headers=world.headers("admin_a"))


async def _household_changed(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    body = (await _admin_get(client, world, f"/households/{ctx.household_id}")).json()
    return bool(body["group_name"] == "三组" and body["version"] == 2)


async def _member_added(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    members = (await _admin_get(client, world, f"/households/{ctx.household_id}/members")).json()
    return any(m["name"] == "张小花" for m in members)


async def _member_changed(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    url = f"/households/{ctx.household_id}/members/{ctx.member_id}"
    return bool((await _admin_get(client, world, url)).json()["health"] == "serious")


async def _member_removed(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    url = f"/households/{ctx.household_id}/members/{ctx.member_id}"
    return (await _admin_get(client, world, url)).status_code == 404


async def _household_created(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    response = await _admin_get(client, world, f"/households?q={NEW_HOUSEHOLD_NUMBER}")
    return bool(response.json()["items"])


async def _household_imported(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    response = await _admin_get(client, world, f"/households?q={IMPORTED_HOUSEHOLD_NUMBER}")
    return bool(response.json()["items"])


async def _region_created(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return (await _admin_get(client, world, f"/regions/{NEW_VILLAGE}")).status_code == 200


async def _record_revision(
    client: httpx.AsyncClient, world: World, url: str, field: str, value: Any
) -> bool:
    body = (await _admin_get(client, world, url)).json()
    return bool(body["revision"] == 2 and body[field] == value)


async def _visit_updated(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return await _record_revision(client, world, f"/visits/{ctx.visit_id}", "mode", "phone")


async def _snapshot_updated(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    url = f"/income-snapshots/{ctx.snapshot_id}"
    return await _record_revision(client, world, url, "wage_income", "9000.00")


async def _measure_updated(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return await _record_revision(client, world, f"/measures/{ctx.measure_id}", "progress_pct", 50)


async def _threshold_set(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    rows = (await _admin_get(client, world, "/thresholds")).json()
    return any(
        (r["scope"], r["year"], r["poverty_line"]) == (ctx.scope, ctx.year, "5000.00") for r in rows
    )


def _visit_write(ctx: Ctx) -> dict[str, Any]:
    return {
        "revision": 2,
        "household_id": str(ctx.household_id),
        "visited_at": (utcnow() - timedelta(days=1)).isoformat(),
        "mode": "phone",
        "findings": "电话回访",
    }


def _snapshot_write(ctx: Ctx) -> dict[str, Any]:
    return {
        "revision": 2,
        "household_id": str(ctx.household_id),
        "year": 2024,
        "kind": "annual",
        "household_size": 3,
        "recorded_at": "2024-12-10T15:00:00+08:00",
        "wage_income": "9000.00",
    }


def _case_write(ctx: Ctx) -> dict[str, Any]:
    return {
        "revision": 2,
        "household_id": str(ctx.household_id),
        "category": "sudden_hardship",
        "risk_types": ["illness", "high_rigid_expenses"],
        "found_via": "cadre_visit",
        "found_on": "2026-11-02",
        "description": "户主住院, 自付较多",
    }


async def _case_updated(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    url = f"/monitoring-cases/{ctx.case_id}"
    return await _record_revision(
        client, world, url, "risk_types", ["illness", "high_rigid_expenses"]
    )


async def _case_reviewed(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    body = (await _admin_get(client, world, f"/monitoring-cases/{ctx.case_id}")).json()
    return bool(body["status"] == "village_reviewed" and len(body["steps"]) == 1)


async def _alert_verified(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    body = (await _admin_get(client, world, f"/monitoring/alerts/{ctx.alert_id}")).json()
    return bool(body["status"] == "verified")


def _measure_write(ctx: Ctx) -> dict[str, Any]:
    return {
        "revision": 2,
        "household_id": str(ctx.household_id),
        "category": "housing_safety",
        "title": "危房改造",
        "status": "in_progress",
        "progress_pct": 50,
    }


NEW_CLIENT_NAME = "省防返贫监测平台"


async def _client_created(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    page = (await _admin_get(client, world, "/clients")).json()
    return any(item["name"] == NEW_CLIENT_NAME for item in page["items"])


async def _client_rotated(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return (await _admin_get(client, world, f"/clients/{ctx.client_id}")).json()[
        "rotated_at"
    ] is not None


async def _client_disabled(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return bool((await _admin_get(client, world, f"/clients/{ctx.client_id}")).json()["disabled"])


def _ids_of_clients(page: Any) -> set[str]:
    return {item["client_id"] for item in page["items"]}


NEW_WEBHOOK_URL = "https://hooks.example.com/matrix"


async def _webhook_created(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    page = (await _admin_get(client, world, "/webhooks")).json()
    return any(item["url"] == NEW_WEBHOOK_URL for item in page["items"])


async def _webhook_disabled(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return bool((await _admin_get(client, world, f"/webhooks/{ctx.webhook_id}")).json()["disabled"])


async def _redelivery_queued(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    page = (await _admin_get(client, world, f"/webhooks/{ctx.webhook_id}/deliveries")).json()
    return any(d["id"] == str(ctx.delivery_id) and d["status"] == "pending" for d in page["items"])


async def _test_event_queued(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    page = (await _admin_get(client, world, f"/webhooks/{ctx.webhook_id}/deliveries")).json()
    return any(d["event"]["type"] == "webhook.test" for d in page["items"])


NEW_USERNAME = "matrix.officer"
NEW_PASSWORD = "matrix-password-1"


def _people(page: Any) -> set[str]:
    """The world's people a page lists, by their name in the world (usernames are name-xxxxxx)."""
    return {item["username"].rsplit("-", 1)[0] for item in page["items"]}


async def _user_created(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    page = (await _admin_get(client, world, f"/users?q={NEW_USERNAME}")).json()
    return any(item["username"] == NEW_USERNAME for item in page["items"])


async def _user_renamed(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return bool(
        (await _admin_get(client, world, f"/users/{ctx.user_id}")).json()["display_name"]
        == "王庄村 张伟"
    )


async def _user_reassigned(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    body = (await _admin_get(client, world, f"/users/{ctx.user_id}")).json()
    return bool(body["regions"] == [VILLAGE_A1, VILLAGE_A2])


async def _password_reset(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    form = {
        "grant_type": "password",
        "username": world.users["officer_a1"].username,
        "password": NEW_PASSWORD,
    }
    return (await client.post(f"{API}/auth/token", data=form)).status_code == 200


async def _device_revoked(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    page = (await _admin_get(client, world, "/devices")).json()
    return any(d["device_id"] == ctx.device_id and d["revoked"] for d in page["items"])


async def _household_moved(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    body = (await _admin_get(client, world, f"/households/{ctx.household_id}")).json()
    return bool(body["village_code"] == VILLAGE_A2)


async def _conflict_resolved(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    page = (await _admin_get(client, world, "/sync/conflicts?status=resolved")).json()
    return any(item["id"] == str(ctx.conflict_id) for item in page["items"])


def _held_decided(state: str) -> Effect:
    async def effect(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
        page = (await _admin_get(client, world, f"/sync/held?status={state}")).json()
        return any(item["id"] == str(ctx.held_id) for item in page["items"])

    return effect


def _batch(ctx: Ctx) -> dict[str, Any]:
    visit = {**_visit_write(ctx), "mode": "in_home"}
    visit.pop("revision")
    return {
        "batch_id": str(uuid.uuid4()),
        "device_id": "android-matrix",
        "records": [{"type": "visit", "id": str(uuid.uuid4()), "revision": 1, "data": visit}],
    }


async def _upload_started(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    response = await client.head(
        f"{API}/uploads/{ctx.upload_id}", headers=world.headers("officer_a1") | TUS
    )
    return response.status_code == 200 and response.headers["upload-offset"] == "10"


async def _upload_gone(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    response = await client.head(
        f"{API}/uploads/{ctx.upload_id}", headers=world.headers("officer_a1") | TUS
    )
    return response.status_code == 404


async def _photo_stored(client: httpx.AsyncClient, world: World, ctx: Ctx) -> bool:
    return (await _admin_get(client, world, f"/photos/{ctx.put_sha256}")).status_code == 200


def _new_upload(ctx: Ctx) -> dict[str, str]:
    return TUS | {
        "Upload-Length": str(len(PUT_PHOTO)),
        "Upload-Metadata": tus_metadata(
            sha256=ctx.put_sha256, household_id=str(ctx.household_id), filename="房屋.jpg"
        ),
    }


def _photo_shas(page: Any) -> set[str]:
    return {item["sha256"] for item in page["items"]}


def _statuses(body: Any) -> set[str]:
    return {result["status"] for result in body["results"]}


def _feed_households(body: Any) -> set[str]:
    return {c["data"]["number"] for c in body["changes"] if c["type"] == "household"}


def _status_devices(body: Any) -> set[str]:
    return {device["device_id"] for device in body["devices"]}


def _villages(page: Any) -> set[str]:
    return {item["village_code"] for item in page["items"]}


def _device_ids(page: Any) -> set[str]:
    return {item["device_id"] for item in page["items"]}


def _counties(page: Any) -> set[str]:
    """The counties of the audit entries a page lists."""
    return {item["region_code"][:6] + "000000" for item in page["items"]}


def _ids(page: Any) -> set[str]:
    return {item["id"] for item in page["items"]}


def _record_ids(page: Any) -> set[str]:
    return {item["record_id"] for item in page["items"] if item["record_id"]}


def _scopes(rows: Any) -> set[str]:
    return {f"{row['scope']}/{row['year']}" for row in rows}


def _numbers(page: Any) -> set[str]:
    return {item["number"] for item in page["items"]}


def _codes(page: Any) -> set[str]:
    return {item["code"] for item in page["items"]}


HH_A1, HH_A2, HH_B1 = "3715221012010001", "3715221012020001", "3715231012010001"
ABOVE_A = {PROVINCE, CITY, COUNTY_A}
# Town staff read everything under their town and write no field record or household.
OBJECT = expect(401, 200, 404, 200, 200, 404, 200)
WRITE = expect(401, 200, 404, 200, 200, 404, 403)
CREATE_IN_OBJECT = expect(401, 201, 404, 201, 201, 404, 403)
EVERYONE = expect(401, 200, 200, 200, 200, 200, 200)
A1_READERS = ("officer_a1", "secretary_a1", "admin_a", "town_a1")


def a1_sees(*ids: uuid.UUID) -> dict[str | None, set[str]]:
    """What the callers who may read household a1 see in one of its lists."""
    return {caller: {str(i) for i in ids} for caller in A1_READERS}


NATIONAL = {f"national/{year}" for year in range(2010, 2022)}  # seeded by migration 0002
# Regions' own figures the ctx fixture adds: each caller sees those of their regions and of the
# divisions above them, and the national ones.
OWN_THRESHOLDS = {COUNTY_A: 2023, VILLAGE_A2: 2023, COUNTY_B: 2023}

TABLE: dict[tuple[str, str], Entry] = {
    # --- auth: the token endpoints are public by nature (RFC 6749 / RFC 7009); a bearer token
    # sent along changes nothing.
    ("POST", "/api/v1/auth/token"): Entry(
        expect=expect(400, 400, 400, 400, 400, 400, 400), form={"grant_type": ""}, public=True
    ),
    ("POST", "/api/v1/auth/revoke"): Entry(
        expect=expect(200, 200, 200, 200, 200, 200, 200),
        form={"token": "never-issued"},
        public=True,
    ),
    ("GET", "/api/v1/me"): Entry(expect=EVERYONE),
    # --- regions: own regions, what lies under them, and the divisions above them
    ("GET", "/api/v1/regions"): Entry(
        expect=EVERYONE,
        sees=_codes,
        own={
            "officer_a1": ABOVE_A | {TOWN_A1, VILLAGE_A1},
            "officer_a2": ABOVE_A | {TOWN_A1, VILLAGE_A2},
            "secretary_a1": ABOVE_A | {TOWN_A1, VILLAGE_A1},
            "admin_a": ABOVE_A | {TOWN_A1, TOWN_A2, VILLAGE_A1, VILLAGE_A2, VILLAGE_A3},
            "admin_b": {PROVINCE, CITY, COUNTY_B, TOWN_B1, VILLAGE_B1},
            "town_a1": ABOVE_A | {TOWN_A1, VILLAGE_A1, VILLAGE_A2},
        },
    ),
    ("GET", "/api/v1/regions/{code}"): Entry(expect=OBJECT),
    ("POST", "/api/v1/regions"): Entry(
        expect=expect(401, 403, 403, 403, 201, 403, 403),
        json={"code": NEW_VILLAGE, "name": "新立村", "rural_population": 800},
        effect=_region_created,
    ),
    # --- households
    ("GET", "/api/v1/households"): Entry(
        expect=EVERYONE,
        sees=_numbers,
        own={
            "officer_a1": {HH_A1},
            "officer_a2": {HH_A2},
            "secretary_a1": {HH_A1},
            "admin_a": {HH_A1, HH_A2},
            "admin_b": {HH_B1},
            "town_a1": {HH_A1, HH_A2},
        },
    ),
    ("POST", "/api/v1/households/search"): Entry(
        expect=EVERYONE,
        json={"id_number": ID_HEAD_A1},
        sees=_numbers,
        own={
            "officer_a1": {HH_A1},
            "officer_a2": set(),
            "secretary_a1": {HH_A1},
            "admin_a": {HH_A1},
            "admin_b": set(),
            "town_a1": {HH_A1},
        },
    ),
    # admin_b: 422 naming body.village_code ("not in your county"): division codes are public
    # statistics, so this leaks nothing.
    ("POST", "/api/v1/households"): Entry(
        expect=expect(401, 403, 403, 403, 201, 422, 403),
        json={
            "number": NEW_HOUSEHOLD_NUMBER,
            "village_code": VILLAGE_A1,
            "head_name": "刘大海",
            "attribute": "general",
            "main_cause": "illness",
            "identified_year": 2016,
        },
        effect=_household_created,
    ),
    # The county admin imports the national register's list (admin_b: its village is not in
    # their county, 422 with the report, as for POST /households).
    ("POST", "/api/v1/households/imports"): Entry(
        expect=expect(401, 403, 403, 403, 201, 422, 403),
        content=HOUSEHOLD_FILE,
        headers={"Content-Type": "multipart/form-data; boundary=matrix"},
        params=lambda ctx: {"dry_run": "false"},
        effect=_household_imported,
    ),
    ("GET", "/api/v1/households/{household_id}"): Entry(expect=OBJECT),
    ("PATCH", "/api/v1/households/{household_id}"): Entry(
        expect=WRITE, json={"group_name": "三组"}, if_match=True, effect=_household_changed
    ),
    ("GET", "/api/v1/households/{household_id}/members"): Entry(expect=OBJECT),
    ("POST", "/api/v1/households/{household_id}/members"): Entry(
        expect=CREATE_IN_OBJECT,
        json={"name": "张小花", "relation": "child", "added_reason": "newborn"},
        if_match=True,
        effect=_member_added,
    ),
    ("GET", "/api/v1/households/{household_id}/members/{member_id}"): Entry(expect=OBJECT),
    ("PATCH", "/api/v1/households/{household_id}/members/{member_id}"): Entry(
        expect=WRITE, json={"health": "serious"}, if_match=True, effect=_member_changed
    ),
    ("POST", "/api/v1/households/{household_id}/members/{member_id}/removal"): Entry(
        expect=expect(401, 204, 404, 204, 204, 404, 403),
        json={"reason": "moved_out"},
        if_match=True,
        effect=_member_removed,
    ),
    # --- field records: a household's records are its village's; a retry or a new revision by
    # another village's officer or another county's admin finds no household (404).
    ("PUT", "/api/v1/visits/{visit_id}"): Entry(
        expect=WRITE, json=_visit_write, effect=_visit_updated
    ),
    ("GET", "/api/v1/visits/{visit_id}"): Entry(expect=OBJECT),
    ("PUT", "/api/v1/income-snapshots/{snapshot_id}"): Entry(
        expect=WRITE, json=_snapshot_write, effect=_snapshot_updated
    ),
    ("GET", "/api/v1/income-snapshots/{snapshot_id}"): Entry(expect=OBJECT),
    ("PUT", "/api/v1/measures/{measure_id}"): Entry(
        expect=WRITE, json=_measure_write, effect=_measure_updated
    ),
    ("GET", "/api/v1/measures/{measure_id}"): Entry(expect=OBJECT),
    ("GET", "/api/v1/households/{household_id}/visits"): Entry(
        expect=OBJECT, sees=_ids, own=a1_sees(VISIT_ID)
    ),
    ("GET", "/api/v1/households/{household_id}/income-snapshots"): Entry(
        expect=OBJECT, sees=_ids, own=a1_sees(SNAPSHOT_ID)
    ),
    ("GET", "/api/v1/households/{household_id}/measures"): Entry(
        expect=OBJECT, sees=_ids, own=a1_sees(MEASURE_ID)
    ),
    ("GET", "/api/v1/households/{household_id}/timeline"): Entry(
        expect=OBJECT, sees=_record_ids, own=a1_sees(VISIT_ID, SNAPSHOT_ID, MEASURE_ID)
    ),
    # --- monitoring cases: field records of the household's village; the steps by role (village
    # steps by its officers and first secretary; the county admin and town staff are refused
    # the village's step with 403, outsiders find no case).
    ("PUT", "/api/v1/monitoring-cases/{case_id}"): Entry(
        expect=WRITE, json=_case_write, effect=_case_updated
    ),
    ("GET", "/api/v1/monitoring-cases"): Entry(
        expect=EVERYONE,
        sees=_ids,
        own=a1_sees(CASE_ID) | {"officer_a2": set(), "admin_b": set()},
    ),
    ("GET", "/api/v1/monitoring-cases/{case_id}"): Entry(expect=OBJECT),
    ("GET", "/api/v1/households/{household_id}/monitoring-cases"): Entry(
        expect=OBJECT, sees=_ids, own=a1_sees(CASE_ID)
    ),
    ("POST", "/api/v1/monitoring-cases/{case_id}/steps"): Entry(
        expect=expect(401, 201, 404, 201, 403, 404, 403),
        json={"step": "village_review", "decision": "approve", "note": "村民代表会议评议通过"},
        effect=_case_reviewed,
    ),
    # --- department alerts: the county admin imports its county's lists (another county's
    # admin imports into their own county, where nobody matches); the village, town and county
    # read and verify them.
    ("POST", "/api/v1/monitoring/alerts/import"): Entry(
        expect=expect(401, 403, 403, 403, 200, 200, 403),
        content=ALERT_FILE,
        headers={"Content-Type": "multipart/form-data; boundary=matrix"},
    ),
    ("GET", "/api/v1/monitoring/alerts"): Entry(
        expect=EVERYONE,
        sees=_ids,
        own=a1_sees(ALERT_ID) | {"officer_a2": set(), "admin_b": set()},
    ),
    ("GET", "/api/v1/monitoring/alerts/{alert_id}"): Entry(expect=OBJECT),
    ("POST", "/api/v1/monitoring/alerts/{alert_id}/verify"): Entry(
        expect=expect(401, 200, 404, 200, 200, 404, 200),
        json={"outcome": "no_risk", "note": "入户核实, 已报销"},
        effect=_alert_verified,
    ),
    # --- thresholds: everyone reads the national figures and their own regions'; only a county
    # admin sets them, and only inside their county (another county's admin: 403, as divisions
    # are public statistics).
    ("GET", "/api/v1/thresholds"): Entry(
        expect=EVERYONE,
        sees=_scopes,
        own={
            "officer_a1": NATIONAL | {f"{COUNTY_A}/2023"},
            "officer_a2": NATIONAL | {f"{COUNTY_A}/2023", f"{VILLAGE_A2}/2023"},
            "secretary_a1": NATIONAL | {f"{COUNTY_A}/2023"},
            "admin_a": NATIONAL | {f"{COUNTY_A}/2023", f"{VILLAGE_A2}/2023"},
            "admin_b": NATIONAL | {f"{COUNTY_B}/2023"},
            "town_a1": NATIONAL | {f"{COUNTY_A}/2023", f"{VILLAGE_A2}/2023"},
        },
    ),
    ("PUT", "/api/v1/thresholds/{scope}/{year}"): Entry(
        expect=expect(401, 403, 403, 403, 201, 403, 403),
        json={"poverty_line": "5000.00", "note": "县定标准"},
        effect=_threshold_set,
    ),
    # --- devices: a county admin sees and revokes the county's phones; everyone else sees their
    # own and revokes none.
    ("GET", "/api/v1/devices"): Entry(
        expect=EVERYONE,
        sees=_device_ids,
        own={
            "officer_a1": {DEVICE_A1},
            "officer_a2": set(),
            "secretary_a1": set(),
            "admin_a": {DEVICE_A1},
            "admin_b": {DEVICE_B},
            "town_a1": {DEVICE_A1},
        },
    ),
    ("POST", "/api/v1/devices/{device_id}/revoke"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403), effect=_device_revoked
    ),
    # --- users: a county admin administers the accounts of the county (roles are checked before
    # objects; another county's admin finds none, and may not create one in village A1).
    ("GET", "/api/v1/users"): Entry(
        expect=expect(401, 403, 403, 403, 200, 200, 403),
        sees=_people,
        own={
            "admin_a": {"officer_a1", "officer_a2", "secretary_a1", "town_a1", "admin_a"},
            "admin_b": {"admin_b"},
        },
    ),
    ("POST", "/api/v1/users"): Entry(
        expect=expect(401, 403, 403, 403, 201, 422, 403),
        json={
            "username": NEW_USERNAME,
            "role": "officer",
            "password": NEW_PASSWORD,
            "regions": [VILLAGE_A1],
        },
        effect=_user_created,
    ),
    ("GET", "/api/v1/users/{user_id}"): Entry(expect=expect(401, 403, 403, 403, 200, 404, 403)),
    ("PATCH", "/api/v1/users/{user_id}"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403),
        json={"display_name": "王庄村 张伟"},
        effect=_user_renamed,
    ),
    ("PUT", "/api/v1/users/{user_id}/regions"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403),
        json={"regions": [VILLAGE_A1, VILLAGE_A2]},
        effect=_user_reassigned,
    ),
    ("POST", "/api/v1/users/{user_id}/password"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403),
        json={"password": NEW_PASSWORD},
        effect=_password_reset,
    ),
    # --- API clients: a county admin registers, lists, rotates and disables those of the
    # county (roles are checked before objects; another county's admin finds none).
    ("POST", "/api/v1/clients"): Entry(
        expect=expect(401, 403, 403, 403, 201, 422, 403),
        json={"name": NEW_CLIENT_NAME, "region_code": VILLAGE_A1, "scopes": ["households:read"]},
        effect=_client_created,
    ),
    ("GET", "/api/v1/clients"): Entry(
        expect=expect(401, 403, 403, 403, 200, 200, 403),
        sees=_ids_of_clients,
        own={"admin_a": {str(CLIENT_ID)}, "admin_b": set()},
    ),
    ("GET", "/api/v1/clients/{client_id}"): Entry(expect=expect(401, 403, 403, 403, 200, 404, 403)),
    ("POST", "/api/v1/clients/{client_id}/rotate"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403), effect=_client_rotated
    ),
    ("POST", "/api/v1/clients/{client_id}/disable"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403), effect=_client_disabled
    ),
    # A county admin moves a household within the county (roles are checked before objects).
    ("POST", "/api/v1/households/{household_id}/move"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403),
        json={"village_code": VILLAGE_A2},
        if_match=True,
        effect=_household_moved,
    ),
    # --- sync: a batch is always answered; a record of a household the caller may not write is
    # rejected inside it (and nothing of it is stored).
    ("POST", "/api/v1/sync/batches"): Entry(
        expect=expect(401, 200, 200, 200, 200, 200, 403),
        json=_batch,
        sees=_statuses,
        own={
            "officer_a1": {"created"},
            "officer_a2": {"rejected"},
            "secretary_a1": {"created"},
            "admin_a": {"created"},
            "admin_b": {"rejected"},
        },
    ),
    # A batch's stored answer is for the phone that sent it.
    ("GET", "/api/v1/sync/batches/{batch_id}"): Entry(
        expect=expect(401, 200, 404, 404, 404, 404, 404)
    ),
    ("GET", "/api/v1/sync/changes"): Entry(
        expect=EVERYONE,
        sees=_feed_households,
        own={
            "officer_a1": {HH_A1},
            "officer_a2": {HH_A2},
            "secretary_a1": {HH_A1},
            "admin_a": {HH_A1, HH_A2},
            "admin_b": {HH_B1},
            "town_a1": {HH_A1, HH_A2},
        },
    ),
    ("GET", "/api/v1/sync/status"): Entry(
        expect=expect(401, 403, 403, 403, 200, 200, 200),
        sees=_status_devices,
        own={"admin_a": {DEVICE_A1}, "admin_b": {DEVICE_B}, "town_a1": {DEVICE_A1}},
    ),
    ("GET", "/api/v1/sync/conflicts"): Entry(
        expect=expect(401, 403, 403, 200, 200, 200, 200),
        sees=_villages,
        own={
            "secretary_a1": {VILLAGE_A1},
            "admin_a": {VILLAGE_A1},
            "admin_b": set(),
            "town_a1": {VILLAGE_A1},
        },
    ),
    ("POST", "/api/v1/sync/conflicts/{conflict_id}/resolve"): Entry(
        expect=expect(401, 403, 403, 200, 200, 404, 403),
        json={"choice": "server"},
        effect=_conflict_resolved,
    ),
    # Held records: the county admin of their county alone.
    ("GET", "/api/v1/sync/held"): Entry(
        expect=expect(401, 403, 403, 403, 200, 200, 403),
        sees=_villages,
        own={"admin_a": {VILLAGE_A1}, "admin_b": set()},
    ),
    ("POST", "/api/v1/sync/held/{held_id}/accept"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403),
        json={},
        effect=_held_decided("accepted"),
    ),
    ("POST", "/api/v1/sync/held/{held_id}/discard"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403),
        json={"reason": "重复录入"},
        effect=_held_decided("discarded"),
    ),
    # --- uploads (tus): discovery is public; an upload is for a household the caller may
    # write, and belongs to the user who started it.
    ("OPTIONS", "/api/v1/uploads"): Entry(
        expect=expect(204, 204, 204, 204, 204, 204, 204), public=True
    ),
    ("POST", "/api/v1/uploads"): Entry(expect=CREATE_IN_OBJECT, headers=_new_upload),
    ("HEAD", "/api/v1/uploads/{upload_id}"): Entry(
        expect=expect(401, 200, 404, 404, 404, 404, 403), headers=TUS
    ),
    ("PATCH", "/api/v1/uploads/{upload_id}"): Entry(
        expect=expect(401, 204, 404, 404, 404, 404, 403),
        content=UPLOADING[:10],
        headers=TUS | {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        effect=_upload_started,
    ),
    ("DELETE", "/api/v1/uploads/{upload_id}"): Entry(
        expect=expect(401, 204, 404, 404, 404, 404, 403), headers=TUS, effect=_upload_gone
    ),
    # --- photos: readable where a record naming it, or the household it came for, is.
    ("PUT", "/api/v1/photos/{sha256}"): Entry(
        expect=CREATE_IN_OBJECT,
        content=PUT_PHOTO,
        headers={"Content-Type": "image/jpeg"},
        params=lambda ctx: {"household_id": str(ctx.household_id)},
        ids=lambda ctx: {"sha256": ctx.put_sha256},
        effect=_photo_stored,
    ),
    ("GET", "/api/v1/photos/{sha256}"): Entry(expect=OBJECT),
    # The original carries the EXIF position: pii:read, which the first secretary lacks.
    ("GET", "/api/v1/photos/{sha256}/content"): Entry(
        expect=expect(401, 200, 404, 403, 200, 404, 200)
    ),
    ("GET", "/api/v1/photos/{sha256}/thumbnail"): Entry(expect=OBJECT),
    ("GET", "/api/v1/households/{household_id}/photos"): Entry(
        expect=OBJECT,
        sees=_photo_shas,
        own={caller: {PHOTO_SHA} for caller in A1_READERS},
    ),
    ("GET", "/api/v1/measures/{measure_id}/photos"): Entry(expect=OBJECT),
    # --- progress and data quality: a household's, a region's (at or below the caller's
    # regions), the issues of the caller's villages.
    ("GET", "/api/v1/households/{household_id}/progress"): Entry(expect=OBJECT),
    ("GET", "/api/v1/regions/{code}/progress"): Entry(expect=OBJECT),
    ("GET", "/api/v1/quality/issues"): Entry(
        expect=EVERYONE,
        sees=_villages,
        own={
            "officer_a1": {VILLAGE_A1},
            "officer_a2": {VILLAGE_A2},
            "secretary_a1": {VILLAGE_A1},
            "admin_a": {VILLAGE_A1, VILLAGE_A2},
            "admin_b": {VILLAGE_B1},
            "town_a1": {VILLAGE_A1, VILLAGE_A2},
        },
    ),
    # --- exports: the households of a region at or below the caller's regions (village A1).
    ("GET", "/api/v1/exports/households.csv"): Entry(
        expect=OBJECT, params=lambda ctx: {"region": ctx.code}
    ),
    ("GET", "/api/v1/exports/households.xlsx"): Entry(
        expect=OBJECT, params=lambda ctx: {"region": ctx.code}
    ),
    ("GET", "/api/v1/exports/monitoring-cases.csv"): Entry(
        expect=OBJECT, params=lambda ctx: {"region": ctx.code}
    ),
    # --- vocabulary: codes and their Chinese labels, for anyone signed in
    ("GET", "/api/v1/vocabulary"): Entry(expect=EVERYONE),
    # --- webhooks: a county admin (or an API client, not in this table) subscribes to events
    # of the county; officers and secretaries may not. Roles are checked before objects; another
    # county's admin finds none (and may not watch village A1: 422 naming body.region_code).
    ("POST", "/api/v1/webhooks"): Entry(
        expect=expect(401, 403, 403, 403, 201, 422, 403),
        json={"url": NEW_WEBHOOK_URL, "event_types": ["visit.created"], "region_code": VILLAGE_A1},
        effect=_webhook_created,
    ),
    ("GET", "/api/v1/webhooks"): Entry(
        expect=expect(401, 403, 403, 403, 200, 200, 403),
        sees=_ids,
        own={"admin_a": {str(WEBHOOK_ID)}, "admin_b": set()},
    ),
    ("GET", "/api/v1/webhooks/{webhook_id}"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403)
    ),
    ("POST", "/api/v1/webhooks/{webhook_id}/disable"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403), effect=_webhook_disabled
    ),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Entry(
        expect=expect(401, 403, 403, 403, 200, 404, 403)
    ),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Entry(
        expect=expect(401, 403, 403, 403, 202, 404, 403), effect=_redelivery_queued
    ),
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): Entry(
        expect=expect(401, 403, 403, 403, 202, 404, 403), effect=_test_event_queued
    ),
    # --- audit log: the county admin reads the county's (the world's writes, by county).
    ("GET", "/api/v1/audit"): Entry(
        expect=expect(401, 403, 403, 403, 200, 200, 403),
        sees=_counties,
        own={"admin_a": {COUNTY_A}, "admin_b": {COUNTY_B}},
    ),
}

# Served outside /api/v1 and public by design: probes and the API's own documentation.
PUBLIC_OUTSIDE_API = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, however its routers were included."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI without lazily included routers: app.routes is already flat
        routes: list[Any] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    served: set[tuple[str, str]] = set()
    for route in routes:
        methods = getattr(route, "methods", None)
        if methods is None and not route.path.startswith(API):
            continue  # static assets (the web app's, the docs'): files, no data
        # A mount or websocket under the API would escape the table: refuse it outright.
        assert methods, f"route without methods: {route.path}"
        # Starlette answers HEAD on every GET route by itself: only HEAD routes of their own
        # (tus) count.
        served |= {(m, route.path) for m in methods if m != "HEAD" or "GET" not in methods}
    return served


def test_table_covers_every_route() -> None:
    app = create_app()
    served = served_routes(app)
    # The enumeration itself must not miss what the OpenAPI document publishes.
    published = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert published <= served, published - served

    api = {(m, p) for m, p in served if p.startswith(API + "/")}
    assert api - TABLE.keys() == set(), "routes without an authorization entry"
    assert TABLE.keys() - api == set(), "table entries for routes that no longer exist"
    # The web app's pages have a table of their own (tests/web/test_pages.py).
    from tests.web.test_pages import PAGES

    assert served - api <= PUBLIC_OUTSIDE_API | PAGES.keys(), "a route escapes both tables"


async def _write_records(session: AsyncSession, world: World, ctx: Ctx) -> None:
    """Revision 1 of a visit, an income snapshot and a measure of household a1, by officer_a1."""
    officer = world.users["officer_a1"]
    principal = Principal(
        user=officer,
        role=Role.officer,
        region_codes=(VILLAGE_A1,),
        scopes=frozenset(ROLE_SCOPES[Role.officer]),
    )
    records = {
        RecordType.visit: (
            ctx.visit_id,
            {
                **_visit_write(ctx),
                "mode": "in_home",
                "photos": [{"sha256": PHOTO_SHA, "tag": "before", "measure_id": str(MEASURE_ID)}],
            },
        ),
        RecordType.income_snapshot: (ctx.snapshot_id, {**_snapshot_write(ctx), "wage_income": 0}),
        RecordType.measure: (ctx.measure_id, {**_measure_write(ctx), "progress_pct": 0}),
        RecordType.monitoring_case: (ctx.case_id, {**_case_write(ctx), "risk_types": ["illness"]}),
    }
    for record_type, (record_id, body) in records.items():
        kind = records_service.KINDS[record_type]
        applied = await records_service.apply_record(
            session,
            principal=principal,
            kind=kind,
            record_id=record_id,
            data=kind.write.model_validate({**body, "revision": 1}),
        )
        assert applied.outcome.value == "created"


async def _hold_photo(session: AsyncSession, world: World, media_dir: Path) -> None:
    """PHOTO held for household a1 (bytes and thumbnail in the store); officer_a1 uploading
    UPLOADING, nothing sent yet."""
    storage = LocalStorage(media_dir)
    source = media_dir.parent / "photo.jpg"
    source.write_bytes(PHOTO)
    await storage.put_file(original_key(PHOTO_SHA), source, content_type="image/jpeg")
    await storage.put_file(thumbnail_key(PHOTO_SHA), source, content_type="image/jpeg")
    officer, household = world.users["officer_a1"], world.households["a1"]
    session.add(
        Photo(
            sha256=PHOTO_SHA,
            size_bytes=len(PHOTO),
            content_type="image/jpeg",
            width=48,
            height=32,
            household_id=household.id,
            uploaded_by=officer.id,
        )
    )
    await session.flush()
    session.add(PhotoHolder(sha256=PHOTO_SHA, household_id=household.id, user_id=officer.id))
    session.add(
        Upload(
            id=UPLOAD_ID,
            user_id=officer.id,
            household_id=household.id,
            sha256=UPLOADING_SHA,
            length=len(UPLOADING),
            expires_at=utcnow() + timedelta(days=7),
        )
    )


async def _subscribe(session: AsyncSession, world: World) -> None:
    """admin_a's webhook of village A1, with a visit.created event delivered to it."""
    webhook = await make_webhook(
        session,
        owner=world.users["admin_a"],
        regions=(COUNTY_A,),
        region_code=VILLAGE_A1,
        event_types=["visit.created"],
    )
    webhook.id = WEBHOOK_ID
    event = WebhookEvent(
        type="visit.created",
        household_id=world.households["a1"].id,
        region_code=VILLAGE_A1,
        data={"visit_id": str(VISIT_ID)},
        dispatched_at=utcnow(),
    )
    session.add(event)
    await session.flush()
    assert event.id is not None
    now = utcnow()
    session.add(
        WebhookDelivery(
            id=DELIVERY_ID,
            webhook_id=WEBHOOK_ID,
            event_id=event.id,
            household_id=event.household_id,
            status="delivered",
            attempts=1,
            next_attempt_at=now,
            expires_at=now + timedelta(days=1),
            delivered_at=now,
        )
    )
    await session.flush()


async def build_ctx(session: AsyncSession, world: World, media_dir: Path) -> Ctx:
    """Village A1's records, photo, upload, alert, webhook, client, device, batch and conflict."""
    household_id = world.households["a1"].id
    member_id = await session.scalar(
        select(Member.id).where(Member.household_id == household_id, Member.relation == "spouse")
    )
    assert member_id is not None
    context = Ctx(
        household_id=household_id, member_id=member_id, user_id=world.users["officer_a1"].id
    )
    await _write_records(session, world, context)
    await _hold_photo(session, world, media_dir)
    spouse = await session.get(Member, member_id)
    assert spouse is not None and spouse.id_number_hash is not None
    session.add(
        MonitoringAlert(
            id=ALERT_ID,
            county_code=COUNTY_A,
            department="medical_insurance",
            id_number_hash=spouse.id_number_hash,
            kind="large_medical_expense",
            amount=3_800_000,
            occurred_on=date(2026, 10, 20),
            household_id=household_id,
            member_id=member_id,
            village_code=VILLAGE_A1,
            imported_by=world.users["admin_a"].id,
        )
    )
    await _subscribe(session, world)
    await make_client(
        session,
        admin=world.users["admin_a"],
        region=VILLAGE_A1,
        client_id=CLIENT_ID,
    )
    session.add_all(
        PovertyThreshold(scope=scope, year=year, poverty_line=500_000)
        for scope, year in OWN_THRESHOLDS.items()
    )
    now = utcnow()
    session.add_all(
        Device(id=device_id, user_id=world.users[who].id, first_seen_at=now, last_seen_at=now)
        for who, device_id in (("officer_a1", DEVICE_A1), ("admin_b", DEVICE_B))
    )
    await session.flush()
    officer = world.users["officer_a1"]
    session.add(
        SyncBatch(
            id=BATCH_ID,
            user_id=officer.id,
            device_id=DEVICE_A1,
            body_hash="0" * 64,
            received_at=now,
            response={"batch_id": str(BATCH_ID), "results": []},
        )
    )
    await session.flush()
    session.add(
        SyncConflict(
            id=CONFLICT_ID,
            household_id=household_id,
            village_code=VILLAGE_A1,
            batch_id=BATCH_ID,
            device_id=DEVICE_A1,
            user_id=officer.id,
            base_version=1,
            server_version=2,
            fields=["phone"],
            client_changes={"phone": "13900000000"},
            server_values={"phone": PHONE_A1},
            client_hash="1" * 64,
        )
    )
    held_visit = {**_visit_write(context), "mode": "in_home", "findings": "暂存的走访"}
    held_visit.pop("revision")
    session.add(
        HeldRecord(
            id=HELD_ID,
            record_type="visit",
            record_id=HELD_VISIT_ID,
            revision=1,
            item={"type": "visit", "id": str(HELD_VISIT_ID), "revision": 1, "data": held_visit},
            household_id=household_id,
            village_code=VILLAGE_A1,
            author_id=officer.id,
            device_id=DEVICE_A1,
            batch_id=BATCH_ID,
            reason_code="village_unassigned",
            reason="王庄村（371522101201）已不再分配给您",
        )
    )
    # The app shares this session and rolls it back when a request fails: commit the world (to
    # the outer transaction, still rolled back at the end) so a 4xx cannot take it along.
    await session.commit()
    return context


# The world and its records are built once per module (and xdist worker), in a transaction
# rolled back at the end; each test runs in a savepoint of it, rolled back after the test, so
# every test sees the same world and nothing a test writes reaches the next.


@dataclass(frozen=True)
class Built:
    connection: AsyncConnection
    world: World
    ctx: Ctx
    media_dir: Path


@pytest.fixture(scope="module")
async def built(
    engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Built]:
    media = tmp_path_factory.mktemp("matrix") / "media"
    async with engine.connect() as connection:
        outer = await connection.begin()
        setup = joined_session(connection)
        try:
            world = await build_world(setup)
            context = await build_ctx(setup, world, media)
            yield Built(connection, world, context, media)
        finally:
            await setup.close()
            await outer.rollback()


@pytest.fixture
async def session(built: Built) -> AsyncIterator[AsyncSession]:
    """A session in a savepoint of the module's transaction, rolled back after the test."""
    savepoint = await built.connection.begin_nested()
    session = joined_session(built.connection)
    try:
        yield session
    finally:
        await session.close()
        if savepoint.is_active:
            await savepoint.rollback()


@pytest.fixture
def world(built: Built, session: AsyncSession) -> World:
    # A copy: a test may add tokens of its own.
    return replace(built.world, tokens=dict(built.world.tokens))


@pytest.fixture
def ctx(built: Built, session: AsyncSession) -> Ctx:
    return built.ctx


@pytest.fixture
def media_dir(built: Built) -> Path:
    return built.media_dir


async def send(
    client: httpx.AsyncClient,
    world: World,
    ctx: Ctx,
    route: tuple[str, str],
    caller: str | None,
    *,
    if_match: str | None = None,
) -> httpx.Response:
    method, template = route
    entry = TABLE[route]
    url = template.format(
        household_id=ctx.household_id,
        member_id=ctx.member_id,
        visit_id=ctx.visit_id,
        snapshot_id=ctx.snapshot_id,
        measure_id=ctx.measure_id,
        code=ctx.code,
        scope=ctx.scope,
        year=ctx.year,
        device_id=ctx.device_id,
        batch_id=ctx.batch_id,
        conflict_id=ctx.conflict_id,
        upload_id=ctx.upload_id,
        webhook_id=ctx.webhook_id,
        delivery_id=ctx.delivery_id,
        client_id=ctx.client_id,
        case_id=ctx.case_id,
        alert_id=ctx.alert_id,
        user_id=ctx.user_id,
        held_id=ctx.held_id,
        **({"sha256": ctx.sha256} | (entry.ids(ctx) if entry.ids else {})),
    )
    body = entry.json(ctx) if callable(entry.json) else entry.json
    headers = dict(world.headers(caller))
    headers |= (entry.headers(ctx) if callable(entry.headers) else entry.headers) or {}
    if entry.if_match and if_match is not None:
        headers["If-Match"] = if_match
    elif entry.if_match:
        # The current ETag, as the rightful owner would have it: callers who may not see the
        # household must be refused even with a correct If-Match.
        current = await _admin_get(client, world, f"/households/{ctx.household_id}")
        assert current.status_code == 200, current.text
        headers["If-Match"] = current.headers["etag"]
    params = entry.params(ctx) if entry.params else None
    return await client.request(
        method,
        url,
        headers=headers,
        json=body,
        data=entry.form,
        content=entry.content,
        params=params,
    )


def _case_id(route: tuple[str, str], caller: str | None) -> str:
    return f"{route[0]} {route[1].removeprefix(API)} as {caller or 'anonymous'}"


CASES = [(route, caller) for route in TABLE for caller in CALLERS]


@pytest.mark.parametrize(
    ("route", "caller"), CASES, ids=[_case_id(route, caller) for route, caller in CASES]
)
async def test_authorization(
    client: httpx.AsyncClient, world: World, ctx: Ctx, route: tuple[str, str], caller: str | None
) -> None:
    entry = TABLE[route]
    expected = entry.expect[caller]

    response = await send(client, world, ctx, route, caller)

    assert response.status_code == expected, response.text
    if expected >= 400 and route[0] == "HEAD":
        # No body to a HEAD request: the problem is announced, not sent.
        assert response.headers["content-type"] == "application/problem+json"
    elif expected >= 400 and not entry.public:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == expected
        assert problem["code"]
        if expected == 401:
            assert response.headers["www-authenticate"].startswith("Bearer ")
    if entry.sees is not None and expected == 200:
        assert entry.sees(response.json()) == entry.own[caller]
    if entry.effect is not None:
        assert await entry.effect(client, world, ctx) is (response.status_code < 300), (
            "a refused write changed something, or an accepted one did not"
        )


# Routes to one object of village A1 that outsiders must not learn exists (the thresholds a
# county admin sets are no secret: outsiders are refused with 403 instead).
OBJECT_ROUTES = [
    route
    for route in TABLE
    if "{" in route[1]
    and TABLE[route].expect["officer_a2"] == TABLE[route].expect["admin_b"] == 404
]


@pytest.mark.parametrize("caller", ["officer_a2", "admin_b"])
@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=[f"{m} {p}" for m, p in OBJECT_ROUTES])
async def test_hidden_object_looks_like_a_missing_one(
    client: httpx.AsyncClient, world: World, ctx: Ctx, route: tuple[str, str], caller: str
) -> None:
    """Existence is not leaked: a household of another village answers exactly like none."""
    hidden = await send(client, world, ctx, route, caller)
    missing_ctx = Ctx(
        household_id=uuid.uuid4(),
        member_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        visit_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        measure_id=uuid.uuid4(),
        code="371522101299",
        device_id="android-never-seen",
        batch_id=uuid.uuid4(),
        conflict_id=uuid.uuid4(),
        sha256=hashlib.sha256(b"never uploaded").hexdigest(),
        upload_id=uuid.uuid4().hex,
        client_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        alert_id=uuid.uuid4(),
    )
    missing = await send(client, world, missing_ctx, route, caller, if_match='"v1"')

    assert hidden.status_code == missing.status_code == 404
    if route[0] == "HEAD":
        return  # no bodies to compare
    hidden_body, missing_body = hidden.json(), missing.json()
    for key in ("type", "title", "code", "status"):
        assert hidden_body[key] == missing_body[key]
    assert set(hidden_body) == set(missing_body)


# --- personal data: masked for the first secretary, in full for the village officer and admin


MASKED_HEAD = "110105********002X"
MASKED_SPOUSE = "440524********0014"
MASKED_PHONE = "138****1234"


def _check_household(body: dict[str, Any], *, masked: bool) -> None:
    assert body["pii_masked"] is masked
    assert body["phone"] == (MASKED_PHONE if masked else PHONE_A1)
    by_name = {m["name"]: m for m in body["members"]}
    _check_member(by_name["张建国"], ID_HEAD_A1, MASKED_HEAD, masked=masked)
    _check_member(by_name["李秀英"], ID_SPOUSE_A1, MASKED_SPOUSE, masked=masked)
    assert by_name["张小龙"]["id_number"] is None
    assert by_name["张小龙"]["id_number_missing"] is True


def _check_member(member: dict[str, Any], full: str, masked_form: str, *, masked: bool) -> None:
    assert member["id_number"] == (masked_form if masked else full)
    assert member["id_number_missing"] is False
    # The birth date would give away part of the masked number.
    assert (member["birth_date"] is None) is masked


@pytest.mark.parametrize(
    ("caller", "masked"), [("secretary_a1", True), ("officer_a1", False), ("admin_a", False)]
)
async def test_personal_data_masking(
    client: httpx.AsyncClient, world: World, ctx: Ctx, caller: str, masked: bool
) -> None:
    headers = world.headers(caller)
    base = f"{API}/households/{ctx.household_id}"

    one = await client.get(base, headers=headers)
    assert one.status_code == 200, one.text
    _check_household(one.json(), masked=masked)

    listed = await client.get(f"{API}/households", headers=headers, params={"region": VILLAGE_A1})
    assert listed.status_code == 200, listed.text
    [item] = [h for h in listed.json()["items"] if h["number"] == HH_A1]
    _check_household(item, masked=masked)

    found = await client.post(
        f"{API}/households/search", headers=headers, json={"id_number": ID_SPOUSE_A1}
    )
    assert found.status_code == 200, found.text
    [hit] = found.json()["items"]
    _check_household(hit, masked=masked)

    members = await client.get(f"{base}/members", headers=headers)
    assert members.status_code == 200, members.text
    spouse = next(m for m in members.json() if m["name"] == "李秀英")
    _check_member(spouse, ID_SPOUSE_A1, MASKED_SPOUSE, masked=masked)

    member = await client.get(f"{base}/members/{ctx.member_id}", headers=headers)
    assert member.status_code == 200, member.text
    _check_member(member.json(), ID_SPOUSE_A1, MASKED_SPOUSE, masked=masked)


async def test_writes_answer_masked_to_the_secretary(
    client: httpx.AsyncClient, world: World, ctx: Ctx
) -> None:
    """A write's response shows no more than a read would."""
    response = await send(
        client, world, ctx, ("PATCH", "/api/v1/households/{household_id}"), "secretary_a1"
    )
    assert response.status_code == 200, response.text
    _check_household(response.json(), masked=True)

    headers = {**world.headers("secretary_a1"), "If-Match": response.headers["etag"]}
    changed = await client.patch(
        f"{API}/households/{ctx.household_id}/members/{ctx.member_id}",
        headers=headers,
        json={"health": "chronic"},
    )
    assert changed.status_code == 200, changed.text
    _check_member(changed.json(), ID_SPOUSE_A1, MASKED_SPOUSE, masked=True)


async def test_a_token_narrowed_to_reading_cannot_write_or_see_pii(
    client: httpx.AsyncClient, world: World, ctx: Ctx
) -> None:
    """Scopes narrow a login below its role: no households:write, no pii:read."""
    login = await client.post(
        f"{API}/auth/token",
        data={
            "grant_type": "password",
            "username": world.users["officer_a1"].username,
            "password": PASSWORD,
            "scope": "households:read",
        },
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    read = await client.get(f"{API}/households/{ctx.household_id}", headers=headers)
    assert read.status_code == 200, read.text
    _check_household(read.json(), masked=True)

    write = await client.patch(
        f"{API}/households/{ctx.household_id}",
        headers={**headers, "If-Match": read.headers["etag"]},
        json={"group_name": "三组"},
    )
    assert write.status_code == 403, write.text
    assert write.headers["content-type"] == "application/problem+json"
    assert not await _household_changed(client, world, ctx)
