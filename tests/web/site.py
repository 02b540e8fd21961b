"""A small county for the browser tests, served by a real `fieldsync serve`: users of every
kind, a household with income, photos before and after, a visit, a monitoring case waiting for
the county and a sync conflict, all written through the API as the phones would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.core import migrations
from app.users.models import Role
from tests.builders import (
    COUNTY_A,
    PASSWORD,
    TOWN_A1,
    VILLAGE_A1,
    VILLAGE_A2,
    make_household,
    make_region,
    make_user,
)
from tests.databases import fresh_database
from tests.deployment import Database
from tests.photos.images import jpeg_bytes
from tests.photos.tus_helpers import sha256_hex
from tests.records.bodies import measure_body, snapshot_body, visit_body
from tests.sync.helpers import batch, household_edit
from tests.sync.server_helpers import Server, free_port, login, server_env

# Text people typed, shown back to them: it must stay text.
SCRIPT_NAME = '<script>window.__xss = "name"</script>王<b>五</b>'
IMG_FINDINGS = '房屋已加固 <img src="x" onerror="window.__xss = \'findings\'">'
USERS = {
    "admin": ("county.web", Role.county_admin, [COUNTY_A]),
    "town": ("town.web", Role.town_staff, [TOWN_A1]),
    "officer_a1": ("officer.a1", Role.officer, [VILLAGE_A1]),
    "officer_a2": ("officer.a2", Role.officer, [VILLAGE_A2]),
}


@dataclass
class Site:
    base: str
    server: Server
    db: Database
    household_a1: uuid.UUID
    household_a2: uuid.UUID
    case_id: str
    conflict_id: str
    photos: dict[str, str] = field(default_factory=dict)  # tag → sha256

    def username(self, who: str) -> str:
        return USERS[who][0]

    def token(self, who: str, device_id: str | None = None) -> str:
        return login(self.base, self.username(who), PASSWORD, device_id=device_id)

    def api(self, who: str, device_id: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {self.token(who, device_id)}"},
            timeout=60,
        )


async def _seed(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.sessionmaker() as session, session.begin():
        await make_region(session, COUNTY_A, "莘县")
        await make_region(session, TOWN_A1, "燕店镇")
        await make_region(session, VILLAGE_A1, "王庄村", population=1286)
        await make_region(session, VILLAGE_A2, "后屯村", population=1712)
        for username, role, regions in USERS.values():
            await make_user(session, username=username, role=role, regions=regions)
        a1 = await make_household(
            session,
            village=VILLAGE_A1,
            number=f"{VILLAGE_A1}0001",
            head_name=SCRIPT_NAME,
            status="lifted",
            phone="13905351234",
        )
        a2 = await make_household(
            session, village=VILLAGE_A2, number=f"{VILLAGE_A2}0001", head_name="赵六"
        )
        return a1.id, a2.id


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def _field_work(site: Site) -> None:
    """What officer A1's phone and the town would have sent."""
    household = str(site.household_a1)
    with site.api("officer_a1", "phone-a1") as officer:
        for year, wage in ((2019, 9000), (2020, 12000), (2024, 21000), (2025, 24000)):
            body = snapshot_body(
                household,
                year=year,
                wage_income=f"{wage}.00",
                recorded_at=f"{year}-12-10T15:00:00+08:00",
            )
            _ok(officer.put(f"/income-snapshots/{uuid.uuid4()}", json=body))
        for tag, color in (("before", (120, 90, 60)), ("after", (40, 160, 90))):
            data = jpeg_bytes(320, 240, color=color)
            sha = sha256_hex(data)
            site.photos[tag] = sha
            _ok(officer.put(f"/photos/{sha}", params={"household_id": household}, content=data))
        measure_id = str(uuid.uuid4())
        _ok(
            officer.put(
                f"/measures/{measure_id}", json=measure_body(household, status="in_progress")
            )
        )
        photos = [
            {"sha256": sha, "tag": tag, "measure_id": measure_id}
            for tag, sha in site.photos.items()
        ]
        _ok(
            officer.put(
                f"/visits/{uuid.uuid4()}",
                json=visit_body(household, findings=IMG_FINDINGS, photos=photos),
            )
        )
        case = {
            "revision": 1,
            "household_id": household,
            "category": "sudden_hardship",
            "risk_types": ["illness"],
            "found_via": "cadre_visit",
            "found_on": "2026-11-02",
            "description": "户主住院，自付医疗费用较高",
        }
        site.case_id = str(uuid.uuid4())
        _ok(officer.put(f"/monitoring-cases/{site.case_id}", json=case))
        _ok(
            officer.post(
                f"/monitoring-cases/{site.case_id}/steps",
                json={"step": "village_review", "decision": "approve"},
            )
        )
        base = _ok(officer.get(f"/households/{household}"))["version"]
    with site.api("town") as town:
        _ok(
            town.post(
                f"/monitoring-cases/{site.case_id}/steps",
                json={"step": "town_review", "decision": "approve"},
            )
        )
    # Two phones edit the same phone number offline from the same version: a conflict.
    for device, phone in (("phone-a1", "13905350001"), ("phone-a1-old", "13905350002")):
        with site.api("officer_a1", device) as officer:
            body = batch([household_edit(household, base, {"phone": phone})], device_id=device)
            result = _ok(officer.post("/sync/batches", json=body))
    conflict = result["results"][0]
    assert conflict["status"] == "conflict", conflict
    site.conflict_id = conflict["conflict_id"]


@contextmanager
def served_site(tmp_path: Path) -> Iterator[Site]:
    with fresh_database(tmp_path) as url:
        migrations.upgrade(url)
        db = Database(url)
        try:
            a1, a2 = db.run(_seed(db))
            port = free_port()
            env = server_env(url, tmp_path / "data", port=port)
            with Server(env, log_path=tmp_path / "server.log") as server:
                server.start()
                site = Site(f"http://127.0.0.1:{port}", server, db, a1, a2, "", "")
                _field_work(site)
                yield site
        finally:
            db.close()
