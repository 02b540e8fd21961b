"""`fieldsync audit verify`, run as an operator runs it: a process on its own database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.test_cli import REGIONS_CSV, cli_env, run  # noqa: F401 (cli_env is a fixture)


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def test_verify_reports_an_intact_log_then_the_edited_entry(
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    run(cli_env, "migrate")
    empty = run(cli_env, "audit", "verify")
    assert "审计日志完整：0 条" in empty.stdout
    csv_file = tmp_path / "regions.csv"
    csv_file.write_text(REGIONS_CSV, encoding="utf-8")
    run(cli_env, "import-regions", str(csv_file))  # five regions: five entries

    intact = run(cli_env, "audit", "verify")
    assert "审计日志完整：5 条" in intact.stdout
    assert "最后一条：序号 5" in intact.stdout

    await _execute(
        cli_env["FIELDSYNC_DATABASE_URL"],
        "UPDATE audit_entry SET region_code = '371522101202' WHERE seq = 3",
    )
    tampered = run(cli_env, "audit", "verify", ok=False)
    assert tampered.returncode == 1
    assert "第一个异常条目是序号 3" in tampered.stderr and "被修改" in tampered.stderr
    assert "此前 2 条完好" in tampered.stderr
