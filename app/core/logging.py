"""Logging set-up: the service's level, with the drivers' statement logs kept off.

Database drivers log statements *with their parameters* at DEBUG (aiosqlite, SQLAlchemy's
echo): those parameters include ID numbers and phones, so those loggers never go below WARNING,
whatever FIELDSYNC_LOG_LEVEL says.
"""

from __future__ import annotations

import logging

QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool", "alembic")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def escaped(text: str) -> str:
    """`text` with every control character written as its escape (\\r, \\n, \\x1b …), so a
    value sent by a client (a path with %0d%0a) cannot forge or corrupt a line of the log."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
