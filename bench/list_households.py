"""Benchmark: list households as a village officer and as the county admin, with wrk.

Sets up a throwaway deployment (its own data dir and SQLite database, or FIELDSYNC_DATABASE_URL
if given), seeds the demo county, starts `fieldsync serve` and drives it with wrk (Debian package
`wrk`). Tokens and URLs are prepared before the clock starts. Prints requests/s and latency.

    make bench                       # or: .venv/bin/python bench/list_households.py --duration 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

FIELDSYNC = str(Path(sys.executable).with_name("fieldsync"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": "fieldsync-demo"},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-") as tmp:
        env = {**os.environ, "FIELDSYNC_DATA_DIR": tmp, "FIELDSYNC_LOG_LEVEL": "WARNING"}
        port = _free_port()
        env["FIELDSYNC_PORT"] = str(port)
        for step in ("migrate", "seed-demo"):
            subprocess.run([FIELDSYNC, step], env=env, check=True, capture_output=True)
        server = subprocess.Popen(
            [FIELDSYNC, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            scenarios = [
                (
                    "officer, 3 villages, page of 50",
                    "officer.yandian",
                    "/api/v1/households?limit=50",
                ),
                ("county admin, page of 100", "county.admin", "/api/v1/households?limit=100"),
                ("county admin, one household", "county.admin", None),
            ]
            print(
                "fieldsync list benchmark: 600 demo households, "
                f"wrk -c{args.connections} -t2 -d{args.duration}s, 1 server process"
            )
            for title, user, path in scenarios:
                token = _token(base, user)
                if path is None:
                    first = httpx.get(
                        f"{base}/api/v1/households?limit=1",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    path = f"/api/v1/households/{first.json()['items'][0]['id']}"
                result = subprocess.run(
                    [
                        "wrk",
                        "-t2",
                        f"-c{args.connections}",
                        f"-d{args.duration}s",
                        "--latency",
                        "-H",
                        f"Authorization: Bearer {token}",
                        base + path,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                lines = result.stdout.splitlines()
                rate = next(line for line in lines if line.startswith("Requests/sec"))
                p50 = next(line for line in lines if line.strip().startswith("50%"))
                p99 = next(line for line in lines if line.strip().startswith("99%"))
                errors = [
                    line.strip() for line in lines if "Non-2xx" in line or "Socket errors" in line
                ]
                print(
                    f"  {title:<34} {rate.split(':')[1].strip():>9} req/s"
                    f"   p50 {p50.split()[1]:>8}   p99 {p99.split()[1]:>8}   {' '.join(errors)}"
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
