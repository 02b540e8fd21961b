"""docs/phone-sync.md, written from a real exchange with the API.

`scenario` plays a first secretary's phone through the test client: sign-in and refresh, the
first download, a batch and its retry, a photo by tus, a conflict. Every request and answer is
recorded as sent and received; `render` puts them between the guide's prose. What changes from
run to run (tokens, ids the server makes, times, cursors, ETags) is replaced, consistently, by
stand-ins numbered in order of appearance, so that the guide is the same on every run and on
both databases, and `tests/docs/test_phone_guide.py` can hold the committed file to it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.builders import VILLAGE_A1, World
from tests.photos.images import jpeg_bytes
from tests.photos.tus_helpers import metadata, sha256_hex

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "phone-sync.md"
TEMPLATE = Path(__file__).with_name("phone-sync.in.md")
API = "/api/v1"
DEVICE = "android-5f3c9a1e"
PASSWORD = "wangzhuang-2026-secure"
USERNAME = "zhang.shuji"
# Ids the phone makes itself: shown as they are.
BATCH_1 = "0b1e7c1a-2f3d-4c5b-8a69-7d8e9f0a1b2c"
BATCH_2 = "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f"
VISIT = "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SNAPSHOT = "b4e2d3c5-6f70-4b8c-9dae-1f2a3b4c5d6e"
BAD_MEASURE = "c5f3e4d6-7081-4c9d-aebf-2a3b4c5d6e7f"
OWN_IDS = {BATCH_1, BATCH_2, VISIT, SNAPSHOT, BAD_MEASURE}
# Times the phone sends (its own clock): shown as they are.
OWN_TIMES = {"2026-11-30T09:30:00+08:00", "2026-11-30T10:00:00+08:00"}
# Headers worth showing (the others are the same on every answer: see the README).
SHOWN_HEADERS = {
    "authorization",
    "content-type",
    "if-none-match",
    "etag",
    "idempotent-replay",
    "location",
    "tus-resumable",
    "upload-length",
    "upload-offset",
    "upload-metadata",
    "retry-after",
}
SECRET_KEYS = {"access_token": "访问令牌", "refresh_token": "刷新令牌"}

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
_BEARER = re.compile(r"Bearer \S+")
_UPLOAD = re.compile(r"/uploads/([0-9a-f]{32})\b")


@dataclass
class Exchange:
    """One request and its answer, as recorded."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: Any
    status: int
    response_headers: dict[str, str]
    response_body: Any


@dataclass
class Stand:
    """Consistent stand-ins for what changes from run to run."""

    seen: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def _next(self, kind: str, value: str, make: Any) -> str:
        if value not in self.seen:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.seen[value] = make(self.counts[kind])
        return self.seen[value]

    def uuid(self, value: str) -> str:
        if value in OWN_IDS:
            return value
        return self._next("uuid", value, lambda n: str(uuid.UUID(int=0x5EED << 96 | n)))

    def time(self, value: str) -> str:
        if value in OWN_TIMES:
            return value
        # Server times in order: 2026-12-01 10:00:00 (China time) on, a second apart.
        return self._next("time", value, lambda n: f"2026-12-01T02:00:{n:02d}Z")

    def opaque(self, kind: str, value: str) -> str:
        return self._next(kind, value, lambda n: f"{kind}-{n}")

    def metadata(self, value: str) -> str:
        """tus Upload-Metadata with each (base64) value stood in for."""
        pairs = []
        for pair in value.split(","):
            key, _, encoded = pair.partition(" ")
            plain = self.text(base64.b64decode(encoded).decode())
            pairs.append(f"{key} {base64.b64encode(plain.encode()).decode()}")
        return ",".join(pairs)

    def text(self, value: str) -> str:
        value = _BEARER.sub("Bearer <访问令牌>", value)
        value = _UPLOAD.sub(lambda m: "/uploads/" + self.opaque("upload", m.group(1)), value)
        value = _UUID.sub(lambda m: self.uuid(m.group(0)), value)
        return _TIME.sub(lambda m: self.time(m.group(0)), value)

    def json(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.json(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v, key) for v in value]
        if isinstance(value, str):
            if key in SECRET_KEYS:
                return f"<{SECRET_KEYS[key]}>"
            if key in ("next_cursor", "cursor") and value:
                return self.opaque("cursor", value)
            return self.text(value)
        return value


class Recorder:
    """Sends requests through `client` and keeps each exchange."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.steps: dict[str, list[Exchange]] = {}

    async def send(self, step: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        request = response.request
        body: Any = None
        if "json" in kwargs:
            body = kwargs["json"]
        elif "data" in kwargs:
            body = dict(kwargs["data"])
        elif "content" in kwargs:
            body = f"<{len(kwargs['content'])} 字节>"
        try:
            answer: Any = response.json() if response.content else None
        except ValueError:
            answer = f"<{len(response.content)} 字节>"
        self.steps.setdefault(step, []).append(
            Exchange(
                method=method,
                url=str(request.url).removeprefix("http://test"),
                request_headers={
                    k: v for k, v in request.headers.items() if k.lower() in SHOWN_HEADERS
                },
                request_body=body,
                status=response.status_code,
                response_headers={
                    k: v for k, v in response.headers.items() if k.lower() in SHOWN_HEADERS
                },
                response_body=answer,
            )
        )
        return response


async def scenario(client: httpx.AsyncClient, world: World) -> dict[str, list[Exchange]]:
    """A first secretary's phone, from sign-in to a conflict; every exchange recorded."""
    admin = world.headers("admin_a")
    created = await client.post(
        f"{API}/users",
        json={
            "username": USERNAME,
            "display_name": "张书记",
            "role": "first_secretary",
            "password": PASSWORD,
            "regions": [VILLAGE_A1],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    household = str(world.households["a1"].id)
    api = Recorder(client)

    # Sign in, then refresh as a standard OAuth2 library does (no device_id).
    form = {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
        "device_id": DEVICE,
        "app_version": "2.3.0",
    }
    signed = await api.send("login", "POST", f"{API}/auth/token", data=form)
    assert signed.status_code == 200, signed.text
    refresh = {"grant_type": "refresh_token", "refresh_token": signed.json()["refresh_token"]}
    renewed = await api.send("refresh", "POST", f"{API}/auth/token", data=refresh)
    assert renewed.status_code == 200, renewed.text
    phone = {"Authorization": f"Bearer {renewed.json()['access_token']}"}

    # The first download, page by page, then nothing new.
    page = await api.send("download", "GET", f"{API}/sync/changes", headers=phone)
    assert page.status_code == 200, page.text
    cursor = page.json()["next_cursor"]
    while page.json()["has_more"]:
        page = await api.send(
            "download", "GET", f"{API}/sync/changes", params={"cursor": cursor}, headers=phone
        )
        assert page.status_code == 200, page.text
        cursor = page.json()["next_cursor"]

    # A batch: a visit naming a photo not yet sent, an income snapshot, a bad record.
    photo = jpeg_bytes(640, 480)
    sha = sha256_hex(photo)
    visit = {
        "household_id": household,
        "visited_at": "2026-11-30T09:30:00+08:00",
        "mode": "in_home",
        "findings": "危房改造已完工，住房安全有保障",
        "checks": {"housing": "ok", "water": "ok"},
        "photos": [{"sha256": sha, "tag": "after", "caption": "改造后的住房"}],
    }
    snapshot = {
        "household_id": household,
        "year": 2026,
        "kind": "annual",
        "recorded_at": "2026-11-30T10:00:00+08:00",
        "household_size": 3,
        "wage_income": "18600.00",
        "business_income": "4200.50",
        "transfer_dibao": "3960.00",
    }
    bad = {"household_id": household, "category": "housing_safety", "title": ""}
    body = {
        "batch_id": BATCH_1,
        "device_id": DEVICE,
        "app_version": "2.3.0",
        "records": [
            {"type": "visit", "id": VISIT, "revision": 1, "data": visit},
            {"type": "income_snapshot", "id": SNAPSHOT, "revision": 1, "data": snapshot},
            {"type": "measure", "id": BAD_MEASURE, "revision": 1, "data": bad},
        ],
    }
    sent = await api.send("batch", "POST", f"{API}/sync/batches", json=body, headers=phone)
    assert sent.status_code == 200, sent.text
    # The answer was lost on the way: the same batch again is the same answer, applied once.
    again = await api.send("retry", "POST", f"{API}/sync/batches", json=body, headers=phone)
    assert again.headers.get("Idempotent-Replay") == "true", again.text

    # The photo by tus: create, a first part, the link drops, ask the offset, the rest.
    tus = {"Tus-Resumable": "1.0.0"}
    create = await api.send(
        "photo",
        "POST",
        f"{API}/uploads",
        headers={
            **phone,
            **tus,
            "Upload-Length": str(len(photo)),
            "Upload-Metadata": metadata(sha256=sha, household_id=household, tag="after"),
        },
    )
    assert create.status_code == 201, create.text
    upload = create.headers["Location"]
    chunk = {**phone, **tus, "Content-Type": "application/offset+octet-stream"}
    half = len(photo) // 2
    first = await api.send(
        "photo", "PATCH", upload, headers={**chunk, "Upload-Offset": "0"}, content=photo[:half]
    )
    assert first.status_code == 204, first.text
    offset = await api.send("photo", "HEAD", upload, headers={**phone, **tus})
    assert offset.headers["Upload-Offset"] == str(half)
    rest = await api.send(
        "photo",
        "PATCH",
        upload,
        headers={**chunk, "Upload-Offset": str(half)},
        content=photo[half:],
    )
    assert rest.status_code == 204, rest.text

    # A conflict: the county changed the household's phone while the phone edited it offline.
    current = await client.get(f"{API}/households/{household}", headers=admin)
    base = current.json()["version"]
    changed = await client.patch(
        f"{API}/households/{household}",
        json={"phone": "13905350001"},
        headers={**admin, "If-Match": current.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    edit = {
        "batch_id": BATCH_2,
        "device_id": DEVICE,
        "app_version": "2.3.0",
        "records": [
            {
                "type": "household",
                "id": household,
                "base_version": base,
                "changes": {"phone": "13905359999"},
            }
        ],
    }
    clash = await api.send("conflict", "POST", f"{API}/sync/batches", json=edit, headers=phone)
    assert clash.json()["results"][0]["status"] == "conflict", clash.text
    listed = await api.send("conflict", "GET", f"{API}/sync/conflicts", headers=phone)
    assert listed.status_code == 200, listed.text
    return api.steps


def _shown(value: Any, depth: int = 0) -> Any:
    """A body for reading: long lists cut to their first two items."""
    if isinstance(value, list) and len(value) > 3 and depth > 0:
        return [_shown(v, depth + 1) for v in value[:2]] + [f"…（另 {len(value) - 2} 项）"]
    if isinstance(value, list):
        return [_shown(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _shown(v, depth + 1) for k, v in value.items()}
    return value


def _header(stand: Stand, name: str, value: str) -> str:
    if name.lower() == "etag":
        return stand.opaque("etag", value)
    if name.lower() == "upload-metadata":
        return stand.metadata(value)
    return stand.text(value)


def _exchange(stand: Stand, exchange: Exchange) -> str:
    url = urlsplit(exchange.url)
    query = [(k, stand.json(v, k)) for k, v in parse_qsl(url.query)]
    target = stand.text(url.path) + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    lines = [f"{exchange.method} {target}"]
    lines += [f"{k}: {_header(stand, k, v)}" for k, v in sorted(exchange.request_headers.items())]
    if isinstance(exchange.request_body, dict | list):
        lines += [
            "",
            json.dumps(_shown(stand.json(exchange.request_body)), ensure_ascii=False, indent=2),
        ]
    elif exchange.request_body is not None:
        lines += ["", exchange.request_body]
    request = "\n".join(lines)
    lines = [f"HTTP/1.1 {exchange.status} {httpx.codes.get_reason_phrase(exchange.status)}"]
    for name, value in sorted(exchange.response_headers.items()):
        lines.append(f"{name}: {_header(stand, name, value)}")
    if isinstance(exchange.response_body, dict | list):
        lines += [
            "",
            json.dumps(_shown(stand.json(exchange.response_body)), ensure_ascii=False, indent=2),
        ]
    answer = "\n".join(lines)
    return f"```http\n{request}\n```\n\n```http\n{answer}\n```\n"


def render(steps: dict[str, list[Exchange]]) -> str:
    """The guide: its prose (phone-sync.in.md), each `{{step}}` replaced by the exchanges
    recorded for that step."""
    stand = Stand()

    def exchanges(match: re.Match[str]) -> str:
        return "\n".join(_exchange(stand, exchange) for exchange in steps[match.group(1)])

    prose = TEMPLATE.read_text(encoding="utf-8")
    missing = set(steps) - set(re.findall(r"^\{\{(\w+)\}\}$", prose, flags=re.M))
    assert not missing, f"steps without a place in {TEMPLATE.name}: {missing}"
    return re.sub(r"^\{\{(\w+)\}\}\n", exchanges, prose, flags=re.M)
