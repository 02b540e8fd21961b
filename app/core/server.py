"""uvicorn's HTTP protocols with an idle timeout for clients that stop sending mid-request.

uvicorn closes a connection idle *between* requests (`timeout_keep_alive`), but one that opens
and sends nothing, or trickles a request's headers or body and then stops, it keeps for ever: a
few hundred of those (slowloris) hold every file descriptor. These protocols close a
connection that has sent nothing for `FIELDSYNC_IDLE_TIMEOUT_SECONDS` while the server waits
for it: before a request's headers are complete, or while its body is still coming and the app
is ready for more. The clock restarts at every byte, so a phone on a weak signal that keeps
sending, however slowly, is never cut off; and a request the app is working on (its body all
read, or reading paused because the app has not taken what came) is never timed out here.

One timer per connection, re-armed only when it fires: nothing is scheduled per read.
"""

from __future__ import annotations

import asyncio
import logging
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
