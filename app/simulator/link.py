"""A phone's network link: latency, bandwidth and requests lost on the way there or back.

The link is an httpx transport wrapped around the real one (a TCP connection to the server, or
the app in-process), so the phone's code is the same on a perfect link and a bad one. A lost
request raises a transport error, as a dropped connection does:

- `NotSent`: lost before the server saw it (the phone may send it again, nothing happened);
- `AnswerLost`: the server received the request and answered, but the answer never arrived.
  Whatever the request did is done: a retry of a batch must be answered as a replay.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import httpx


class NotSent(httpx.ConnectError):
    """The request was lost before it reached the server."""


class AnswerLost(httpx.ReadError):
    """The server acted on the request; its answer was lost on the way back."""


@dataclass(frozen=True)
class LinkProfile:
    """How bad a link is. All zero: a perfect link (a phone on the township office's Wi-Fi)."""

    latency_ms: float = 0.0  # one round trip, drawn between half and one and a half of this
    bandwidth_kbps: float = 0.0  # both ways; 0: unlimited
    loss: float = 0.0  # probability a request is lost: half before the server saw it, half after

    @property
    def perfect(self) -> bool:
        return self.latency_ms <= 0 and self.bandwidth_kbps <= 0 and self.loss <= 0


@dataclass
class LinkStats:
    requests: int = 0
    lost_before: int = 0
    lost_after: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class FlakyLink(httpx.AsyncBaseTransport):
    """`inner` seen through `profile`, with its own seeded dice: the same seed and the same
    requests lose the same ones."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, profile: LinkProfile, rng: random.Random
    ) -> None:
        self.inner = inner
        self.profile = profile
        self.rng = rng
        self.stats = LinkStats()

    async def _delay(self, size: int) -> None:
        """Half a round trip, plus the time `size` bytes take at the link's bandwidth."""
        seconds = self.profile.latency_ms / 2000 * self.rng.uniform(0.5, 1.5)
        if self.profile.bandwidth_kbps > 0:
            seconds += size * 8 / (self.profile.bandwidth_kbps * 1000)
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.stats.requests += 1
        # The die is thrown first, so a request's fate does not depend on timing.
        roll = self.rng.random()
        lose_before, lose_after = roll < self.profile.loss / 2, roll < self.profile.loss
        body = await request.aread()
        self.stats.bytes_up += len(body)
        await self._delay(len(body))
        if lose_before:
            self.stats.lost_before += 1
            raise NotSent("the connection dropped before the request was sent", request=request)
        response = await self.inner.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        self.stats.bytes_down += response.num_bytes_downloaded
        await self._delay(response.num_bytes_downloaded)
        if lose_after:
            self.stats.lost_after += 1
            raise AnswerLost("the connection dropped before the answer arrived", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
