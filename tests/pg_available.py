"""Exit 0 when the test PostgreSQL server answers (used by `make test` outside CI)."""

from __future__ import annotations

import os
import socket
import sys

from sqlalchemy.engine import make_url


def main() -> int:
    url = make_url(
        os.environ.get(
            "FIELDSYNC_TEST_POSTGRES_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
        )
    )
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1):
            return 0
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
