"""The database half of a backup: one consistent snapshot of SQLite or PostgreSQL, and its restore.

SQLite: the online backup API copies the database as of one read transaction; in WAL mode the
writers go on meanwhile. PostgreSQL: a REPEATABLE READ transaction exports its snapshot, `pg_dump`
dumps exactly that snapshot, and the same transaction reads what the manifest lists (row counts,
photos): the dump and the manifest describe one moment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.backup.manifest import BackupError

SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"


@dataclass
class Contents:
    """What the manifest lists of a database: rows per table, photos, upload parts."""

    revision: str | None = None
    tables: dict[str, int] = field(default_factory=dict)
    photos: list[tuple[str, str]] = field(default_factory=list)  # (sha256, content type)
    upload_parts: list[str] = field(default_factory=list)


_PHOTOS = "SELECT sha256, content_type FROM photo ORDER BY sha256"
_UPLOAD_PARTS = "SELECT key FROM upload_part ORDER BY key"
_REVISION = "SELECT version_num FROM alembic_version"
_SQLITE_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
)
_POSTGRES_TABLES = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _contents(tables: Iterable[str], query: Callable[[str], list[tuple[object, ...]]]) -> Contents:
    contents = Contents()
    names = list(tables)
    for name in names:
        contents.tables[name] = int(query(f"SELECT count(*) FROM {_quoted(name)}")[0][0])  # type: ignore[call-overload]
    if "alembic_version" in contents.tables:
        rows = query(_REVISION)
        contents.revision = str(rows[0][0]) if rows else None
    if "photo" in contents.tables:
        contents.photos = [(str(sha), str(kind)) for sha, kind in query(_PHOTOS)]
    if "upload_part" in contents.tables:
        contents.upload_parts = [str(row[0]) for row in query(_UPLOAD_PARTS)]
    return contents


# --- SQLite -------------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def sqlite_contents(connection: sqlite3.Connection) -> Contents:
    def query(sql: str) -> list[tuple[object, ...]]:
        return connection.execute(sql).fetchall()

    return _contents((str(row[0]) for row in query(_SQLITE_TABLES)), query)


def snapshot_sqlite(source: Path, target: Path, *, busy_timeout_ms: int) -> Contents:
    """Copy the live database at `source` to `target` (one step: one read transaction) and read
    the copy's contents. The copy is a self-contained file (rollback journal, not WAL)."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    with (
        _closing(sqlite3.connect(source, timeout=busy_timeout_ms / 1000)) as live,
        _closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        return sqlite_contents(copy)


def sqlite_is_empty(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return True
    with _closing(sqlite3.connect(path)) as connection:
        return not connection.execute(_SQLITE_TABLES).fetchall()


def restore_sqlite(backup: Path, target: Path) -> Contents:
    """Copy the backup's database to `target` (which holds no tables) and read what it holds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        _closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as source,
        _closing(sqlite3.connect(target)) as restored,
    ):
        source.backup(restored)
        restored.execute("PRAGMA journal_mode=WAL")
        return sqlite_contents(restored)


class _closing:
    """`contextlib.closing` for sqlite3 connections (their own `with` only ends a transaction)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *_: object) -> None:
        self.connection.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


def libpq_environment(url: str) -> dict[str, str]:
    """The environment that points pg_dump / pg_restore at the SQLAlchemy URL's database.

    The password travels in PGPASSWORD, never on a command line (visible to `ps`) or in output.
    """
    parsed = make_url(url)
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value is not None:
            env[name] = str(value)
    ssl = parsed.query.get("sslmode") or parsed.query.get("ssl")
    if isinstance(ssl, tuple):
        ssl = ssl[0]
    if ssl:
        env["PGSSLMODE"] = {"true": "require", "false": "disable"}.get(ssl.lower(), ssl)
    return env


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL client tools, version 15 or newer)")
    return found


async def _run(args: list[str], env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip()
        raise BackupError(f"{Path(args[0]).name} failed ({process.returncode}): {message}")


async def postgres_contents(connection: AsyncConnection) -> Contents:
    # Run the few queries one by one on the connection (the helper is synchronous).
    results: dict[str, list[tuple[object, ...]]] = {}

    async def fetch(sql: str) -> None:
        results[sql] = [tuple(row) for row in (await connection.execute(text(sql))).all()]

    await fetch(_POSTGRES_TABLES)
    tables = [str(row[0]) for row in results[_POSTGRES_TABLES]]
    for name in tables:
        await fetch(f"SELECT count(*) FROM {_quoted(name)}")
    if "alembic_version" in tables:
        await fetch(_REVISION)
    if "photo" in tables:
        await fetch(_PHOTOS)
    if "upload_part" in tables:
        await fetch(_UPLOAD_PARTS)
    return _contents(tables, results.__getitem__)


async def snapshot_postgres(engine: AsyncEngine, url: str, target: Path) -> Contents:
    """pg_dump (custom format) of one exported snapshot, and that snapshot's contents."""
    pg_dump = _program("pg_dump")
    async with engine.connect() as connection:
        frozen = await connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        async with frozen.begin():
            snapshot = await frozen.scalar(text("SELECT pg_export_snapshot()"))
            dump = asyncio.create_task(
                _run(
                    [
                        pg_dump,
                        "--format=custom",
                        f"--snapshot={snapshot}",
                        f"--file={target}",
                        "--no-password",
                    ],
                    libpq_environment(url),
                )
            )
            try:
                contents = await postgres_contents(frozen)
            finally:
                # The snapshot lives as long as this transaction: keep it open until the dump ends.
                await dump
    return contents


async def postgres_is_empty(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        return not (await connection.execute(text(_POSTGRES_TABLES))).first()


async def restore_postgres(engine: AsyncEngine, url: str, backup: Path) -> Contents:
    """pg_restore the dump into the (empty) database, in one transaction, and read what it holds."""
    pg_restore = _program("pg_restore")
    database = make_url(url).database or ""
    await _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            f"--dbname={database}",
            str(backup),
        ],
        libpq_environment(url),
    )
    async with engine.connect() as connection:
        return await postgres_contents(connection)
