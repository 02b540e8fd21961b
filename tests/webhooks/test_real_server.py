"""Webhooks from real `fieldsync serve` processes: two of them, one database, one receiver.

The workers run in the servers (as in production), the receiver on loopback in the test. The
receiver holds every answer until the writes are done (the requests that cause events must not
wait for their delivery), then fails the first three deliveries.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from app.users.models import Role
from app.webhooks.models import WebhookDelivery
from tests.builders import COUNTY_A, PASSWORD, make_user
from tests.deployment import OFFICER, Deployment, deploy
from tests.sync.server_helpers import Server, free_port, login, server_env
from tests.webhooks.helpers import ALL_TYPES, Receiver

pytestmark = pytest.mark.slow

ADMIN = "admin.webhook-test"
WORKER_ENV = {
    "FIELDSYNC_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
    "FIELDSYNC_WEBHOOK_POLL_INTERVAL_SECONDS": "0.1",
    "FIELDSYNC_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "FIELDSYNC_WEBHOOK_RETRY_MAX_SECONDS": "1",
    "FIELDSYNC_WEBHOOK_TIMEOUT_SECONDS": "60",
}


@pytest.fixture
def deployment(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    with deploy(tmp_path, **WORKER_ENV) as deployed:
        yield deployed


def _visit(household_id: uuid.UUID) -> dict[str, Any]:
    return {
        "type": "visit",
        "id": str(uuid.uuid4()),
        "revision": 1,
        "data": {
            "household_id": str(household_id),
            "visited_at": "2026-01-15T10:00:00+08:00",
            "mode": "in_home",
            "checks": {"food": "ok"},
        },
    }


def test_two_servers_deliver_every_event_once_in_order_after_three_failures(
    deployment: Deployment, tmp_path: Path
) -> None:
    db = deployment.db

    async def _admin() -> None:
        async with db.sessionmaker() as session, session.begin():
            await make_user(session, username=ADMIN, role=Role.county_admin, regions=[COUNTY_A])

    db.run(_admin())
    url = db.engine.url.render_as_string(hide_password=False)
    second_env = server_env(url, tmp_path / "data", port=free_port(), **WORKER_ENV)
    gate = threading.Event()
    answered = Counter[str]()

    def answer(n: int, event: dict[str, Any]) -> int:
        return 500 if n < 3 else 200

    with (
        Receiver(answer=answer, gate=gate) as receiver,
        Server(second_env, log_path=tmp_path / "second.log") as second,
    ):
        second.start()
        first = deployment.server
        admin = {"Authorization": f"Bearer {login(first.base, ADMIN, PASSWORD)}"}
        officer = {
            "Authorization": f"Bearer {login(second.base, OFFICER, PASSWORD, device_id='p1')}"
        }
        created = httpx.post(
            f"{first.base}/api/v1/webhooks",
            json={"url": receiver.url, "event_types": ALL_TYPES},
            headers=admin,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]

        # Writes through both servers while the receiver answers nothing: none of them waits.
        households = deployment.households
        for round_ in range(3):
            batch = {
                "batch_id": str(uuid.uuid4()),
                "device_id": "p1",
                "records": [_visit(h) for h in households[round_ * 2 : round_ * 2 + 12 : 2]],
            }
            server = (first, second)[round_ % 2]
            response = httpx.post(
                f"{server.base}/api/v1/sync/batches", json=batch, headers=officer, timeout=30
            )
            assert response.status_code == 200, response.text
            assert response.json()["counts"]["created"] == 6
        for household in households[:2]:
            patched = httpx.patch(
                f"{first.base}/api/v1/households/{household}",
                json={"status": "lifted", "override_reason": "验收通过"},
                headers=admin | {"If-Match": '"v1"'},
                timeout=30,
            )
            assert patched.status_code == 200, patched.text
        # Every write above returned while the receiver held its deliveries unanswered: had a
        # write waited for delivery, it would have hit its 30 s client timeout instead.
        assert all(r.answered == 0 for r in receiver.snapshot())  # nothing answered yet

        # 18 visits, a batch event per village per batch (3 × 2), 2 status changes.
        expected = 18 + 6 + 2
        gate.set()
        deadline = time.monotonic() + 90
        while len({r.event["id"] for r in receiver.delivered()}) < expected:
            assert time.monotonic() < deadline, (
                f"{len(receiver.delivered())} of {expected} delivered:\n"
                f"{first.log_tail()}\n{second.log_tail()}"
            )
            time.sleep(0.1)
        # The servers record each outcome just after the answer: wait for the last ones.
        deadline = time.monotonic() + 30
        while Counter(db.scalars(select(col(WebhookDelivery.status)))) != {"delivered": expected}:
            assert time.monotonic() < deadline, "outcomes not recorded"
            time.sleep(0.1)
        time.sleep(1)  # anything sent twice would arrive now
        received = receiver.snapshot()

    delivered = Counter(r.event["id"] for r in received if r.answered == 200)
    assert len(delivered) == expected
    assert set(delivered.values()) == {1}, "a delivery was made twice"
    assert [r.answered for r in received].count(500) == 3
    for r in received:
        answered[r.headers["fieldsync-event"]] += 1
        assert r.signed_by(secret)
    assert answered["visit.created"] >= 18 and answered["sync.batch_received"] >= 6
    by_household: dict[str, list[int]] = defaultdict(list)
    for r in received:
        if r.event["household_id"] is not None:
            by_household[r.event["household_id"]].append(r.event["id"])
    for ids in by_household.values():
        assert ids == sorted(ids)
