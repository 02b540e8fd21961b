"""`fieldsync deliver-webhooks --once` and `fieldsync prune-webhooks`, run as operators run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core import migrations
from app.users.models import Role
from app.webhooks.emit import emit
from app.webhooks.vocabulary import EventType
from tests.builders import COUNTY_A, VILLAGE_A1, make_household, make_region, make_user
from tests.databases import fresh_database
from tests.deployment import Database
from tests.sync.server_helpers import free_port, server_env
from tests.webhooks.helpers import Receiver, make_webhook

FIELDSYNC = str(Path(sys.executable).with_name("fieldsync"))


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [FIELDSYNC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_deliver_once_sends_what_is_due_and_prune_keeps_recent_deliveries(
    tmp_path: Path, database_url: str
) -> None:
    with fresh_database(tmp_path) as url, Receiver() as receiver:
        migrations.upgrade(url)
        db = Database(url)

        async def _seed() -> None:
            async with db.sessionmaker() as session, session.begin():
                await make_region(session, COUNTY_A, "莘县")
                await make_region(session, "371522101000", "燕店镇")
                await make_region(session, VILLAGE_A1, "王庄村")
                admin = await make_user(
                    session, username="admin.cli", role=Role.county_admin, regions=[COUNTY_A]
                )
                household = await make_household(session, village=VILLAGE_A1)
                await make_webhook(session, owner=admin, regions=(COUNTY_A,), url=receiver.url)
                for status in ("lifted", "returned"):
                    emit(
                        session,
                        type=EventType.household_status_changed,
                        region_code=VILLAGE_A1,
                        household_id=household.id,
                        data={"status_to": status},
                    )

        try:
            db.run(_seed())
        finally:
            db.close()
        env = server_env(
            url,
            tmp_path / "data",
            port=free_port(),
            FIELDSYNC_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",
        )

        assert _run(env, "deliver-webhooks", "--once").strip() == "sent 2 webhook deliveries"
        assert _run(env, "deliver-webhooks", "--once").strip() == "sent 0 webhook deliveries"
        pruned = _run(env, "prune-webhooks", "--older-than-days", "1")

    assert [r.event["data"]["status_to"] for r in receiver.delivered()] == ["lifted", "returned"]
    assert pruned.strip() == "deleted 0 webhook deliveries and 0 events older than 1 days"
