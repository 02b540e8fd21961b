"""The `fieldsync` command, run as operators run it: a separate process on its own database."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.pool import NullPool

from tests.databases import BACKEND, fresh_database

FIELDSYNC = str(Path(sys.executable).with_name("fieldsync"))


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> Iterator[dict[str, str]]:
    """Environment of a fresh deployment: its own empty database and data directory."""
    with fresh_database(tmp_path) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
        env.update(
            FIELDSYNC_DATABASE_URL=url,
            FIELDSYNC_DATA_DIR=str(tmp_path / "data"),
            FIELDSYNC_ENVIRONMENT="development",
        )
        yield env


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [FIELDSYNC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if ok:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


REGIONS_CSV = """code,name,parent_code,rural_population
371522000000,莘县,,
371522101000,燕店镇,371522000000,
371522101201,王庄村,371522101000,1286
371522101202,后屯村,371522101000,1712
371522101201-01,王庄村一组,371522101201,
"""


def test_import_regions_is_safe_to_run_again(cli_env: dict[str, str], tmp_path: Path) -> None:
    run(cli_env, "migrate")
    csv_file = tmp_path / "regions.csv"
    csv_file.write_text(REGIONS_CSV, encoding="utf-8")

    first = run(cli_env, "import-regions", str(csv_file))
    assert "5 created, 0 updated, 0 unchanged" in first.stdout
    assert "5/5 rows" in first.stderr  # progress output

    again = run(cli_env, "import-regions", str(csv_file))
    assert "0 created, 0 updated, 5 unchanged" in again.stdout

    csv_file.write_text(REGIONS_CSV.replace("王庄村,371522101000,1286", "王庄村,371522101000,1300"))
    changed = run(cli_env, "import-regions", str(csv_file))
    assert "0 created, 1 updated, 4 unchanged" in changed.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(REGIONS_CSV + "371522101299,新村,371523000000,10\n37152210,坏,,\n")
    failed = run(cli_env, "import-regions", str(bad), ok=False)
    assert failed.returncode == 1
    assert "line 7: parent_code" in failed.stderr and "line 8: code" in failed.stderr
    assert "nothing was imported" in failed.stderr

    user = run(
        cli_env,
        "create-user",
        "--username", "wang.officer",
        "--password", "long-enough-1",
        "--role", "officer",
        "--region", "371522101201",
        "--region", "371522101202",
    )  # fmt: skip
    assert "user wang.officer created" in user.stdout
    wrong_level = run(
        cli_env,
        "create-user",
        "--username", "x.admin",
        "--password", "long-enough-1",
        "--role", "county_admin",
        "--region", "371522101201",
        ok=False,
    )  # fmt: skip
    assert wrong_level.returncode == 1 and "assigned a county" in wrong_level.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": "fieldsync-demo"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _all_households(base: str, token: str) -> list[dict]:  # type: ignore[type-arg]
    return _all_items(base, token, "/api/v1/households")


def _all_items(base: str, token: str, path: str) -> list[dict]:  # type: ignore[type-arg]
    items: list[dict] = []  # type: ignore[type-arg]
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = httpx.get(
            f"{base}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.slow
def test_demo_deployment_serves_and_scopes_officers(cli_env: dict[str, str]) -> None:
    """Acceptance 2: migrate, seed the demo, serve; an officer sees only their villages."""
    started = time.monotonic()
    migrated = run(cli_env, "migrate")
    seeded = run(cli_env, "seed-demo")
    assert "officer.yandian" in seeded.stdout and "county.admin" in seeded.stdout
    # On PostgreSQL the planner knows the loaded tables at once, whatever autovacuum does
    # (these machines run without it).
    on_postgresql = BACKEND == "postgresql"
    for step in (migrated, seeded):
        assert ("planner statistics gathered (ANALYZE)" in step.stderr) is on_postgresql
    if on_postgresql:
        assert asyncio.run(_planned_rows(cli_env["FIELDSYNC_DATABASE_URL"], "household")) == 696
    again = run(cli_env, "seed-demo")  # safe to run twice
    assert "households: 0 created, 696 already there" in again.stderr
    assert "monitoring: 0 cases" in again.stderr

    port = _free_port()
    env = {**cli_env, "FIELDSYNC_PORT": str(port)}
    server = subprocess.Popen(
        [FIELDSYNC, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "server exited before it was ready"
            assert time.monotonic() < deadline, "server not ready within 60 s"
            time.sleep(0.2)
        print(f"migrate + seed twice + serve ready in {time.monotonic() - started:.1f} s")

        officer = _all_households(base, _token(base, "officer.yandian"))
        assert len(officer) == 3 * (50 + 8)
        assert {h["village_code"] for h in officer} == {
            "371522101201",
            "371522101202",
            "371522101203",
        }
        town = _all_households(base, _token(base, "town.yandian"))
        assert {h["id"] for h in town} == {h["id"] for h in officer}
        admin_token = _token(base, "county.admin")
        admin = _all_households(base, admin_token)
        assert len(admin) == 696 and len({h["id"] for h in admin}) == 696
        # As of 2026: the register is history (every registered household exited by 2020).
        registered = [h for h in admin if h["origin"] == "registered"]
        assert len(registered) == 600
        assert {h["status"] for h in registered} <= {"lifted", "lifted_no_support"}
        assert all(h["status"] is None for h in admin if h["origin"] == "ordinary")
        cases = _all_items(base, admin_token, "/api/v1/monitoring-cases")
        assert {(c["category"], c["status"]) for c in cases} == {
            (category, status)
            for category in ("unstable_lifted", "marginal", "sudden_hardship")
            for status in (
                "proposed",
                "village_reviewed",
                "town_reviewed",
                "identified",
                "clearing_village_reviewed",
                "clearing_town_reviewed",
                "cleared",
                "rejected",
            )
        }
        alerts = _all_items(base, admin_token, "/api/v1/monitoring/alerts")
        assert {a["status"] for a in alerts} == {"open", "verified"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()


async def _planned_rows(url: str, table: str) -> float:
    """The row count PostgreSQL's planner assumes for `table` (pg_class.reltuples: -1 before
    the table was ever analyzed or vacuumed)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.scalar(
                text("SELECT reltuples FROM pg_class WHERE relname = :table"), {"table": table}
            )
            return float(rows)
    finally:
        await engine.dispose()


def test_operator_mistakes_get_clear_messages(cli_env: dict[str, str], tmp_path: Path) -> None:
    run(cli_env, "migrate")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(REGIONS_CSV.encode("gbk"))  # Excel's default export on a Chinese system
    failed = run(cli_env, "import-regions", str(gbk), ok=False)
    assert failed.returncode == 1 and "not UTF-8" in failed.stderr

    superscript = tmp_path / "odd.csv"
    superscript.write_text(REGIONS_CSV.replace(",1286", ",²"), encoding="utf-8")
    odd = run(cli_env, "import-regions", str(superscript), ok=False)
    assert odd.returncode == 1 and "rural_population" in odd.stderr

    production = {**cli_env, "FIELDSYNC_ENVIRONMENT": "production"}
    refused = run(production, "seed-demo", ok=False)
    assert refused.returncode == 2 and "refused in production" in refused.stderr


def test_prune_uploads_deletes_expired_uploads_and_their_parts(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    run(cli_env, "migrate")
    media = tmp_path / "data" / "media"
    expired, live = "e" * 32, "f" * 32
    for upload_id in (expired, live):
        part = media / "uploads" / upload_id / f"{0:016d}-abcd1234"
        part.parent.mkdir(parents=True)
        part.write_bytes(b"\xff\xd8 first bytes of a photo")
    asyncio.run(_add_uploads(cli_env["FIELDSYNC_DATABASE_URL"], {expired: -1, live: 6}))

    result = run(cli_env, "prune-uploads")

    assert "deleted 1 expired uploads" in result.stdout
    assert not (media / "uploads" / expired).exists()
    assert (media / "uploads" / live).is_dir()
    assert run(cli_env, "prune-uploads").stdout.startswith("deleted 0 expired uploads")


async def _add_uploads(url: str, days_left: dict[str, int]) -> None:
    """Uploads by a new officer for a new household, expiring in so many days, one part each."""
    from app.core.base import utcnow
    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.photos.models import Upload, UploadPart
    from app.users.models import Role
    from tests.builders import VILLAGE_A1, make_household, make_region, make_user

    engine = make_engine(get_settings(), url=url, poolclass=NullPool)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await make_region(session, VILLAGE_A1, "王庄村", population=1286)
            user = await make_user(
                session, username="cli.officer", role=Role.officer, regions=[VILLAGE_A1]
            )
            household = await make_household(session, village=VILLAGE_A1)
            for upload_id, days in days_left.items():
                session.add(
                    Upload(
                        id=upload_id,
                        user_id=user.id,
                        household_id=household.id,
                        sha256="0" * 64,
                        length=1000,
                        offset=24,
                        expires_at=utcnow() + timedelta(days=days),
                    )
                )
                await session.flush()
                session.add(
                    UploadPart(
                        upload_id=upload_id,
                        start=0,
                        size=24,
                        key=f"uploads/{upload_id}/{0:016d}-abcd1234",
                    )
                )
    finally:
        await engine.dispose()


def test_forwarded_addresses_are_believed_only_from_the_configured_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn believes X-Forwarded-For from any loopback client unless told (issue 17)."""
    import uvicorn

    from app import cli
    from app.core.config import get_settings

    seen: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.append(kwargs))
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    base = get_settings()
    for trusted, expected in (
        ("", (False, None)),
        ("10.0.0.5, 10.1.0.0/16", (True, "10.0.0.5, 10.1.0.0/16")),
    ):
        settings = base.model_copy(update={"trusted_proxies": trusted})
        monkeypatch.setattr(cli, "get_settings", lambda settings=settings: settings)
        cli.serve(reload=False, workers=1)
        assert (seen[-1]["proxy_headers"], seen[-1]["forwarded_allow_ips"]) == expected
        assert seen[-1]["server_header"] is False


def test_assign_regions_moves_an_officer_without_a_new_password(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Reassignment keeps the password and the logins, remembers the village taken away, and
    names an unknown user or region (nothing changed)."""
    run(cli_env, "migrate")
    csv_file = tmp_path / "regions.csv"
    csv_file.write_text(REGIONS_CSV, encoding="utf-8")
    run(cli_env, "import-regions", str(csv_file))
    run(
        cli_env,
        "create-user",
        "--username", "li.officer",
        "--password", "long-enough-1",
        "--role", "officer",
        "--region", "371522101201",
    )  # fmt: skip
    url = cli_env["FIELDSYNC_DATABASE_URL"]
    hash_before, _, _ = asyncio.run(_account(url, "li.officer"))

    moved = run(cli_env, "assign-regions", "--username", "li.officer", "--region", "371522101202")

    assert "li.officer 的区划已更新：371522101202" in moved.stdout
    assert "已移除：371522101201" in moved.stdout
    assert "正在为 li.officer" in moved.stderr
    hash_after, regions, ended = asyncio.run(_account(url, "li.officer"))
    assert hash_after == hash_before  # no new password
    assert (regions, ended) == (["371522101202"], ["371522101201"])

    unknown = run(
        cli_env, "assign-regions", "--username", "nobody", "--region", "371522101202", ok=False
    )
    assert unknown.returncode == 1
    assert "用户 nobody 不存在" in unknown.stderr and "未做任何更改" in unknown.stderr
    missing = run(
        cli_env,
        "assign-regions",
        "--username", "li.officer",
        "--region", "371522101299",
        ok=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "371522101299" in missing.stderr
    assert "不存在" in missing.stderr
    town = run(
        cli_env,
        "assign-regions",
        "--username", "li.officer",
        "--region", "371522101000",
        ok=False,
    )  # fmt: skip
    assert town.returncode == 1 and "未做任何更改" in town.stderr
    assert asyncio.run(_account(url, "li.officer"))[1] == ["371522101202"]


async def _account(url: str, username: str) -> tuple[str, list[str], list[str]]:
    """The account's password hash, regions and regions taken from it."""
    from sqlalchemy import select

    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.users.models import User, UserRegion, UserRegionEnded

    engine = make_engine(get_settings(), url=url, poolclass=NullPool)
    try:
        async with make_sessionmaker(engine)() as session:
            user = await session.scalar(select(User).where(User.username == username))
            assert user is not None
            regions = await session.scalars(
                select(UserRegion.region_code).where(UserRegion.user_id == user.id)
            )
            ended = await session.scalars(
                select(UserRegionEnded.region_code).where(UserRegionEnded.user_id == user.id)
            )
            return user.password_hash, sorted(regions), sorted(ended)
    finally:
        await engine.dispose()


def test_serve_runs_uvicorn_with_our_protocol_and_shutdown_bound(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """`--host`/`--port` win over the settings; slow clients and SIGTERM are handled."""
    import signal

    import uvicorn
    from typer.testing import CliRunner

    from app.cli import cli
    from app.core.config import get_settings
    from app.core.server import IdleTimeoutHttpToolsProtocol

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(get_settings(), "shutdown_timeout_seconds", 7)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123"])
        handler = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert result.exit_code == 0, result.output
    assert "http://0.0.0.0:8123" in result.output
    [kwargs] = calls
    assert (kwargs["host"], kwargs["port"]) == ("0.0.0.0", 8123)
    assert kwargs["http"] is IdleTimeoutHttpToolsProtocol
    assert kwargs["timeout_graceful_shutdown"] == 7
    with pytest.raises(SystemExit) as exited:  # what uvicorn raises again after its shutdown
        assert callable(handler)
        handler(signal.SIGTERM, None)
    assert exited.value.code == 0
