"""Slow clients: a connection that stops sending mid-request is closed, one that keeps sending
(however slowly) is served, and a request the app is working on is never cut.

uvicorn serves a small ASGI app here with each of our two protocols (httptools, which `fieldsync
serve` runs, and h11), on a real loopback socket, with the timeout shortened to 1 s.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn

from app.core.config import get_settings
from app.core.server import IdleTimeoutH11Protocol, IdleTimeoutHttpToolsProtocol

TIMEOUT = 1.0
PROTOCOLS = [
    pytest.param(IdleTimeoutHttpToolsProtocol, id="httptools"),
    pytest.param(IdleTimeoutH11Protocol, id="h11"),
]


class Echo:
    """Answers with the length of the body it read; `slow` seconds of work first."""

    def __init__(self, slow: float = 0) -> None:
        self.slow = slow
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await asyncio.sleep(self.slow)
        body = str(size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(protocol: type[asyncio.Protocol], app: Echo) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http=protocol, ws="none", lifespan="off", log_level="warning", timeout_keep_alive=5
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), task.exception()
            await asyncio.sleep(0.01)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and after how many seconds."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit)
    return data, time.monotonic() - started


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "idle_timeout_seconds", TIMEOUT)


REQUEST = b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 12\r\n\r\n"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: te", id="half-the-headers"),
        pytest.param(REQUEST + b"hello", id="half-the-body"),
    ],
)
async def test_a_client_that_stops_sending_is_closed(
    protocol: type[asyncio.Protocol], sent: bytes
) -> None:
    app = Echo()
    async with serving(protocol, app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(sent)
        await writer.drain()

        data, seconds = await closed_after(reader, 10 * TIMEOUT)

        writer.close()
    assert data == b""
    assert TIMEOUT * 0.9 <= seconds < TIMEOUT * 3
    if b"hello" in sent:
        assert app.disconnected.is_set()  # the app saw the client go, as for a cut connection


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_slow_client_that_keeps_sending_is_served(
    protocol: type[asyncio.Protocol],
) -> None:
    """Headers and body a few bytes every 0.2 s: 2 s in all, the timeout being 1 s."""
    request = REQUEST + b"hello, world"
    chunks = [request[i : i + 8] for i in range(0, len(request), 8)]
    async with serving(protocol, Echo()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.2)
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        body = await reader.readexactly(2)
        writer.close()
    assert time.monotonic() - started > 1.5 * TIMEOUT
    assert answer.startswith(b"HTTP/1.1 200")
    assert body == b"12"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_request_the_app_works_on_is_not_timed_out(
    protocol: type[asyncio.Protocol],
) -> None:
    async with serving(protocol, Echo(slow=2 * TIMEOUT)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST + b"hello, world")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_zero_turns_the_timeout_off(
    protocol: type[asyncio.Protocol], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "idle_timeout_seconds", 0)
    async with serving(protocol, Echo()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(), 1.3 * TIMEOUT)
        writer.close()
