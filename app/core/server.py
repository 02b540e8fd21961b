"""How `fieldsync serve` runs under uvicorn: slow clients, and stopping on SIGTERM.

**Slow clients.** uvicorn's HTTP protocols with an idle timeout for clients that stop sending
mid-request.

uvicorn closes a connection idle *between* requests (`timeout_keep_alive`), but one that opens
and sends nothing, or trickles a request's headers or body and then stops, it keeps for ever: a
few hundred of those (slowloris) hold every file descriptor. These protocols close a
connection that has sent nothing for `FIELDSYNC_IDLE_TIMEOUT_SECONDS` while the server waits
for it: before a request's headers are complete, or while its body is still coming and the app
is ready for more. The clock restarts at every byte, so a phone on a weak signal that keeps
sending, however slowly, is never cut off; and a request the app is working on (its body all
read, or reading paused because the app has not taken what came) is never timed out here.

One timer per connection, re-armed only when it fires: nothing is scheduled per read.

**Stopping.** On SIGTERM readiness turns false at once (`draining_on_sigterm`, installed by
the app's lifespan), the server may go on serving for `FIELDSYNC_SHUTDOWN_DRAIN_SECONDS`, then
uvicorn stops accepting, waits up to `FIELDSYNC_SHUTDOWN_TIMEOUT_SECONDS` for requests in
flight, and ends the lifespan (the webhook worker stops there); the process exits with 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import get_settings

log = logging.getLogger("fieldsync.server")


class _IdleTimeout:
    """Mixed into a uvicorn HTTP protocol: `_awaiting_client` says whether it waits for data."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_timeout = get_settings().idle_timeout_seconds
        self._last_received = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._last_received = self.loop.time()
        if self.idle_timeout > 0:
            self._idle_timer = self.loop.call_later(self.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self._last_received = self.loop.time()
        super().data_received(data)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self.transport.is_closing():
            return
        idle = self.loop.time() - self._last_received
        if idle >= self.idle_timeout and self._awaiting_client():
            log.info(
                "closed a connection from %s that sent nothing for %.0f s mid-request",
                self.client[0] if self.client else "?",
                idle,
            )
            self.transport.close()
            return
        wait = self.idle_timeout - idle if idle < self.idle_timeout else self.idle_timeout
        self._idle_timer = self.loop.call_later(wait, self._check_idle)

    def _awaiting_client(self) -> bool:
        raise NotImplementedError


class IdleTimeoutH11Protocol(_IdleTimeout, H11Protocol):
    """uvicorn's h11 protocol with the idle timeout."""

    def _awaiting_client(self) -> bool:
        if self.flow is not None and self.flow.read_paused:
            return False  # the app has not taken what came: the client may not send
        if self.cycle is not None and self.cycle.waiting_for_100_continue:
            return False  # the client waits for the app's "100 Continue"
        # IDLE: no request yet, or its headers are incomplete (after a response, uvicorn's
        # keep-alive timeout, shorter, closes first). SEND_BODY: its body is still coming.
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)


class IdleTimeoutHttpToolsProtocol(_IdleTimeout, HttpToolsProtocol):
    """uvicorn's httptools protocol (what its `auto` picks) with the idle timeout."""

    def _awaiting_client(self) -> bool:
        if self.flow is not None and self.flow.read_paused:
            return False
        cycle = self.cycle
        # No request yet; or the last one answered and the next one's headers incomplete
        # (its cycle begins only when they are complete); or its body still coming.
        if cycle is None or cycle.response_complete:
            return True
        return cycle.more_body and not cycle.waiting_for_100_continue


# --- stopping --------------------------------------------------------------------------------


def exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM a clean stop (exit status 0) for the process that serves.

    uvicorn catches SIGTERM while it serves, shuts down gracefully, then raises the signal
    again under the handler that was there before it: this one, which exits with 0 instead of
    dying of the signal (143), so a supervisor sees the requested stop succeed.
    """
    signal.signal(signal.SIGTERM, _exit_zero)


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def draining_on_sigterm(on_signal: Callable[[], None], *, delay: float) -> Iterator[None]:
    """While the app serves under uvicorn: SIGTERM first calls `on_signal` (readiness turns
    false), then, `delay` seconds later, reaches uvicorn's own handler, which stops accepting
    connections, lets requests in flight finish and ends the lifespan. A second SIGTERM does
    not wait. Nothing is changed when no Python handler is installed (not under uvicorn)."""
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    server_handler: Callable[[int, FrameType | None], Any] = previous
    loop = asyncio.get_running_loop()
    signalled = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal signalled
        first, signalled = not signalled, True
        if first:
            on_signal()
        if first and delay > 0:
            log.info("SIGTERM: not ready; still serving for %g s, then stopping", delay)
            # Thread-safe: a signal handler may run in the middle of the loop's own work.
            loop.call_soon_threadsafe(loop.call_later, delay, server_handler, signum, frame)
        else:
            server_handler(signum, frame)

    signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is handle:
            signal.signal(signal.SIGTERM, previous)
