"""Events a write publishes in its own transaction, and the subscribers that act on them.

A domain module says what happened (an event: a frozen dataclass of its own) and does not know
who cares. What follows from it (photo references, the webhook outbox, measure history…) is a
subscriber, registered where the app is assembled (`app.wiring`). Subscribers run in the order
they were registered, awaited inside the publishing transaction: if one raises, the write
fails and nothing of it stays.

Core knows no event type: only that events are objects and subscribers are coroutines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

E = TypeVar("E")
Subscriber = Callable[[AsyncSession, Any], Awaitable[None]]

_subscribers: dict[type, list[Subscriber]] = {}


def subscribe(
    event_type: type[E], subscriber: Callable[[AsyncSession, E], Awaitable[None]]
) -> None:
    """Call `subscriber` for every event of exactly `event_type` (once, however often asked)."""
    registered = _subscribers.setdefault(event_type, [])
    if subscriber not in registered:
        registered.append(subscriber)


def subscribers_of(event_type: type) -> tuple[Subscriber, ...]:
    return tuple(_subscribers.get(event_type, ()))


async def publish(session: AsyncSession, event: object) -> None:
    for subscriber in _subscribers.get(type(event), ()):
        await subscriber(session, event)
