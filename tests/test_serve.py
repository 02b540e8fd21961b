"""`fieldsync serve` as a process: slow clients and SIGTERM, on a real server (tests.deployment).

The timeouts are shortened to about a second; app/core/server.py holds the machinery and
tests/core/test_idle_timeout.py its finer cases.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.builders import PASSWORD
from tests.deployment import OFFICER, deploy

pytestmark = pytest.mark.slow

LOGIN = urlencode({"grant_type": "password", "username": OFFICER, "password": PASSWORD}).encode()


def login_request(host: str) -> bytes:
    return (
        f"POST /api/v1/auth/token HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(LOGIN)}\r\nConnection: close\r\n\r\n"
    ).encode() + LOGIN


def read_answer(sock: socket.socket, timeout: float) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the answer (the server closes the connection after it)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_client_that_stops_is_closed_and_a_slow_one_is_served(
    tmp_path: Path, database_url: str
) -> None:
    with deploy(tmp_path, FIELDSYNC_IDLE_TIMEOUT_SECONDS="1") as deployed:
        url = httpx.URL(deployed.server.base)
        host, port = url.host, url.port or 80

        with socket.create_connection((host, port)) as stalled:
            stalled.sendall(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: fieldsync\r\nContent-Le")
            started = time.monotonic()
            stalled.settimeout(10)
            assert stalled.recv(1024) == b""  # closed by the server
            closed_after = time.monotonic() - started

        # One login sent 8 bytes every 0.2 s: about 7 s, the timeout being 1 s.
        request = login_request(host)
        with socket.create_connection((host, port)) as slow:
            started = time.monotonic()
            for i in range(0, len(request), 8):
                slow.sendall(request[i : i + 8])
                time.sleep(0.2)
            status, body = read_answer(slow, timeout=30)
            took = time.monotonic() - started

    assert 0.9 <= closed_after < 3, closed_after
    assert took > 3
    assert status == 200 and body["token_type"] == "bearer", body


def test_sigterm_lets_requests_in_flight_finish_then_exits_0(
    tmp_path: Path, database_url: str
) -> None:
    drain, bound = 1.0, 10
    env = {
        "FIELDSYNC_SHUTDOWN_DRAIN_SECONDS": str(drain),
        "FIELDSYNC_SHUTDOWN_TIMEOUT_SECONDS": str(bound),
        "FIELDSYNC_LOG_LEVEL": "INFO",
    }
    with deploy(tmp_path, **env) as deployed:
        server = deployed.server
        url = httpx.URL(server.base)
        host, port = url.host, url.port or 80
        request = login_request(host)
        split = len(request) - 20
        with socket.create_connection((host, port)) as in_flight:
            in_flight.sendall(request[:split])  # headers and part of the body

            server.terminate()
            signalled = time.monotonic()
            # Still accepting during the drain, but no longer ready.
            ready = httpx.get(f"{server.base}/readyz", timeout=5)
            time.sleep(drain + 0.5)
            with pytest.raises(httpx.ConnectError):  # past the drain: no new connections
                httpx.get(f"{server.base}/healthz", timeout=5)
            # The request in flight goes on, slowly, and is answered.
            for i in range(split, len(request), 5):
                in_flight.sendall(request[i : i + 5])
                time.sleep(0.1)
            status, body = read_answer(in_flight, timeout=bound)

        code = server.wait_exit(timeout=bound + 10)
        stopped_after = time.monotonic() - signalled
        log = server.log_tail(400)

    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "shutting_down"
    assert status == 200 and body["token_type"] == "bearer", body
    assert code == 0, log
    assert stopped_after < drain + bound, stopped_after
    assert "webhooks: worker stopped" in log, log
