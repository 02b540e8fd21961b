"""Running and inspecting the Alembic migrations from code (CLI, readiness, tests)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _alembic_ini() -> Path:
    # From a checkout (editable install) the project root; from an installed wheel (the
    # container) the working directory, where alembic.ini and migrations/ are copied.
    # FIELDSYNC_ALEMBIC_INI names it explicitly (the container sets it).
    explicit = os.environ.get("FIELDSYNC_ALEMBIC_INI")
    if explicit:
        return Path(explicit)
    for candidate in (PROJECT_ROOT / "alembic.ini", Path.cwd() / "alembic.ini"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("alembic.ini not found in the project root or the working directory")


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(_alembic_ini()))
    # Called from the app, the CLI or the tests: leave their logging configuration alone.
    config.attributes["configure_logger"] = False
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
