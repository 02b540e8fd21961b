"""A client's rate limit holds across two API processes that share Redis (issue 7, acceptance 4).

Two `fieldsync serve` processes on one database and one Redis, under a key prefix of this run's
own (deleted afterwards). Redis is required in CI: without CI, an absent Redis skips the test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from app.users.models import Role
from tests.builders import COUNTY_A, PASSWORD, make_user
from tests.deployment import deploy
from tests.sync.server_helpers import Server, free_port, login

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("FIELDSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN = "admin.server-test"
LIMIT = 6


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own, whose keys are deleted afterwards."""
    address = urlsplit(REDIS_URL)
    try:
        socket.create_connection((address.hostname, address.port or 6379), timeout=1).close()
    except OSError:
        message = f"Redis is not reachable at {REDIS_URL} (FIELDSYNC_TEST_REDIS_URL)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI requires it")
        pytest.skip(f"{message}; CI=1 makes it required")
    prefix = f"fieldsync-test-{uuid.uuid4().hex}"
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as store:
        if keys := list(store.scan_iter(match=f"{prefix}:*")):
            store.delete(*keys)


def test_a_client_limit_holds_across_two_api_processes(
    tmp_path: Path, database_url: str, redis_prefix: str
) -> None:
    prefix = redis_prefix
    env = {
        "FIELDSYNC_RATE_LIMIT_STORAGE_URI": REDIS_URL,
        "FIELDSYNC_RATE_LIMIT_KEY_PREFIX": prefix,
        "FIELDSYNC_RATE_LIMIT_CLIENT": f"{LIMIT}/minute",
    }
    with deploy(tmp_path, **env) as deployment:
        a = deployment.server
        b_env = {**a.env, "FIELDSYNC_PORT": str(free_port())}
        with Server(b_env, log_path=tmp_path / "server-b.log") as b:
            b.start()

            async def _admin() -> None:
                async with deployment.db.sessionmaker() as session, session.begin():
                    await make_user(
                        session, username=ADMIN, role=Role.county_admin, regions=[COUNTY_A]
                    )

            deployment.db.run(_admin())
            admin = login(a.base, ADMIN, PASSWORD)
            registered = httpx.post(
                f"{a.base}/api/v1/clients",
                json={"name": "市级看板", "region_code": COUNTY_A, "scopes": ["households:read"]},
                headers={"Authorization": f"Bearer {admin}"},
                timeout=30,
            )
            assert registered.status_code == 201, registered.text
            issued = httpx.post(
                f"{b.base}/api/v1/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(registered.json()["client_id"], registered.json()["client_secret"]),
                timeout=30,
            )
            assert issued.status_code == 200, issued.text
            headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}

            # Alternating between the processes, the client gets its six requests in all:
            # each process sees what the other counted.
            for sent in range(LIMIT):
                server = (a, b)[sent % 2]
                response = httpx.get(f"{server.base}/api/v1/households", headers=headers)
                assert response.status_code == 200, response.text
                assert response.headers["ratelimit"].startswith(f'"client";r={LIMIT - sent - 1};t=')
            for server in (a, b):
                refused = httpx.get(f"{server.base}/api/v1/households", headers=headers)
                assert refused.status_code == 429, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.json()["code"] == "rate_limited"
                assert 1 <= int(refused.headers["retry-after"]) <= 60

            # The admin is another caller (and users are not limited by default).
            households = httpx.get(
                f"{b.base}/api/v1/households", headers={"Authorization": f"Bearer {admin}"}
            )
            assert households.status_code == 200
    # The counts were in Redis, under this run's prefix (deleted afterwards).
    with redis.Redis.from_url(REDIS_URL) as store:
        assert list(store.scan_iter(match=f"{prefix}:*"))
