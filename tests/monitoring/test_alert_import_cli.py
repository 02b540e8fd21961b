"""`fieldsync import-alerts`, run as an operator runs it: a process of its own, its own database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.pool import NullPool
from sqlmodel import select

from tests.builders import (
    COUNTY_A,
    ID_HEAD_A1,
    ID_SPOUSE_A1,
    VILLAGE_A1,
    make_household,
    make_id_number,
    make_region,
    make_user,
)
from tests.conftest import TEST_PII_KEY
from tests.databases import fresh_database

FIELDSYNC = str(Path(sys.executable).with_name("fieldsync"))


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> Iterator[dict[str, str]]:
    """A fresh deployment's environment, with the test process's key of the ID-number hash (the
    households below are written by the test process)."""
    with fresh_database(tmp_path) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
        env.update(
            FIELDSYNC_DATABASE_URL=url,
            FIELDSYNC_DATA_DIR=str(tmp_path / "data"),
            FIELDSYNC_ENVIRONMENT="development",
            FIELDSYNC_PII_KEY=TEST_PII_KEY,
        )
        yield env


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [FIELDSYNC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if ok:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


async def _county(url: str, *, admins: list[str]) -> None:
    """County A with one village, a household of two members with ID numbers, its admins."""
    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.users.models import Role

    engine = make_engine(get_settings(), url=url, poolclass=NullPool)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for code, name in [
                ("370000000000", "山东省"),
                ("371500000000", "聊城市"),
                (COUNTY_A, "莘县"),
                ("371522101000", "燕店镇"),
                (VILLAGE_A1, "王庄村"),
            ]:
                await make_region(session, code, name)
            for username in admins:
                await make_user(
                    session, username=username, role=Role.county_admin, regions=[COUNTY_A]
                )
            await make_user(
                session, username="cli.officer", role=Role.officer, regions=[VILLAGE_A1]
            )
            await make_household(
                session,
                village=VILLAGE_A1,
                members=[
                    {"name": "张建国", "id_number": ID_HEAD_A1, "relation": "head"},
                    {"name": "李秀英", "id_number": ID_SPOUSE_A1, "relation": "spouse"},
                ],
            )
    finally:
        await engine.dispose()


async def _alerts(url: str) -> list[tuple[str, str]]:
    from app.core.config import get_settings
    from app.core.db import make_engine
    from app.monitoring.models import MonitoringAlert
    from app.users.models import User

    engine = make_engine(get_settings(), url=url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(MonitoringAlert.kind, User.username).join(
                    User,
                    User.id == MonitoringAlert.imported_by,  # type: ignore[arg-type]
                )
            )
            return sorted((kind, username) for kind, username in rows)
    finally:
        await engine.dispose()


async def _count(url: str) -> int:
    from app.core.config import get_settings
    from app.core.db import make_engine
    from app.monitoring.models import MonitoringAlert

    engine = make_engine(get_settings(), url=url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(MonitoringAlert))).scalar_one()
            )
    finally:
        await engine.dispose()


CSV = (
    "department,id_number,kind,amount,occurred_on,note\n"
    f"medical_insurance,{ID_SPOUSE_A1},large_medical_expense,28650.50,2026-03-02,住院\n"
    f"civil_affairs,{ID_HEAD_A1},assistance_granted,,2026-01-15,\n"
    f"civil_affairs,{make_id_number(99, '19900101')},death,,2026-02-01,\n"
    f"police,{ID_HEAD_A1},death,,2026-02-01,\n"
)


def test_import_alerts_prints_progress_and_the_report(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    url = cli_env["FIELDSYNC_DATABASE_URL"]
    run(cli_env, "migrate")
    asyncio.run(_county(url, admins=["wang.admin", "li.admin"]))
    csv_file = tmp_path / "医保.csv"
    csv_file.write_bytes(CSV.encode("gb18030"))

    first = run(cli_env, "import-alerts", str(csv_file), "--county", COUNTY_A)

    assert "4 rows read (csv), 1 rejected" in first.stderr  # progress
    assert "3/3 valid rows checked: 2 matched, 1 unmatched, 0 duplicate" in first.stderr
    assert "rejected: row 5: department: unknown department 'police'" in first.stderr
    assert (
        f"alerts of {COUNTY_A} imported as li.admin: 4 rows, 2 matched, 1 unmatched, "
        "0 duplicate, 1 rejected"
    ) in first.stdout
    # Recorded as the county's first admin by username.
    assert asyncio.run(_alerts(url)) == [
        ("assistance_granted", "li.admin"),
        ("large_medical_expense", "li.admin"),
    ]

    again = run(cli_env, "import-alerts", str(csv_file), "--county", COUNTY_A, "--as", "wang.admin")
    assert "0 matched, 1 unmatched, 2 duplicate, 1 rejected" in again.stdout
    assert "imported as wang.admin" in again.stdout
    assert asyncio.run(_count(url)) == 2


def test_import_alerts_refuses_what_it_cannot_do(cli_env: dict[str, str], tmp_path: Path) -> None:
    url = cli_env["FIELDSYNC_DATABASE_URL"]
    run(cli_env, "migrate")
    asyncio.run(_county(url, admins=[]))
    csv_file = tmp_path / "alerts.csv"
    csv_file.write_text(CSV, encoding="utf-8")

    no_admin = run(cli_env, "import-alerts", str(csv_file), "--county", COUNTY_A, ok=False)
    assert no_admin.returncode == 1 and "has no active county admin" in no_admin.stderr
    officer = run(
        cli_env,
        "import-alerts",
        str(csv_file),
        "--county",
        COUNTY_A,
        "--as",
        "cli.officer",
        ok=False,
    )
    assert officer.returncode == 1 and "not an active county admin" in officer.stderr
    village = run(cli_env, "import-alerts", str(csv_file), "--county", VILLAGE_A1, ok=False)
    assert village.returncode == 2 and "not a county code" in village.stderr

    picture = tmp_path / "photo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    unreadable = run(cli_env, "import-alerts", str(picture), "--county", COUNTY_A, ok=False)
    assert unreadable.returncode == 1
    assert "neither CSV text nor an .xlsx workbook" in unreadable.stderr
    assert "nothing was imported" in unreadable.stderr
    assert asyncio.run(_count(url)) == 0
