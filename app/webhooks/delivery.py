"""The delivery worker: fans events out to webhooks, then sends them, signed, in order, retried.

Every API process runs one (`deliver_in_background`, started by the app's lifespan), and so can
`fieldsync deliver-webhooks`; any number may run at once:

* **Fan-out** of new outbox events to delivery rows (`app.webhooks.outbox`).
* **Claim.** A delivery is due when it is open (pending or failed), its time has come, no
  worker holds it, its webhook is active, and no earlier event of its household is still open
  for that webhook or not yet fanned out: that keeps each household's events in order. Due
  deliveries are leased (`claimed_until`) in a short transaction, again with SKIP LOCKED.
  Events of no household (`sync.batch_received`) are not ordered.
* **Send.** No transaction is open while a receiver is called. The request goes to an address
  that the URL's host resolved to when it was checked just before (`app.webhooks.urls`), never
  to a second resolution of the name. A 2xx is `delivered`; anything else is retried after an
  exponential backoff with jitter, until the retry period ends (`dead`). A worker that dies
  mid-send leaves its lease to run out: the delivery is sent again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Select, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from app.core.base import utcnow
from app.core.config import Settings
from app.core.db import Transactions, transaction
from app.users.models import User
from app.webhooks.models import Webhook, WebhookDelivery, WebhookEvent
from app.webhooks.outbox import dispatch_events
from app.webhooks.schemas import event_document
from app.webhooks.signing import signature_headers
from app.webhooks.urls import IPAddress, RefusedAddress, check_destination, ip_literal
from app.webhooks.vocabulary import OPEN_STATUSES, DeliveryStatus

log = logging.getLogger("fieldsync.webhooks")

USER_AGENT = "fieldsync-webhooks/1"


# --- claims --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this worker, with what sending it needs."""

    delivery_id: uuid.UUID
    attempt: int
    due_at: datetime  # its next_attempt_at when claimed: a redelivery asked meanwhile moves it
    lease: datetime
    url: str
    secret: str
    event_id: int
    event_type: str
    body: bytes


def _due(now: datetime) -> Select[Any]:
    d = WebhookDelivery
    earlier = aliased(WebhookDelivery)
    unsent = aliased(WebhookEvent)
    return (
        select(col(d.id))
        .join(Webhook, col(Webhook.id) == col(d.webhook_id))
        .join(User, col(User.id) == col(Webhook.owner_id))
        .where(
            col(d.status).in_(OPEN_STATUSES),
            col(d.next_attempt_at) <= now,
            or_(col(d.claimed_until).is_(None), col(d.claimed_until) < now),
            col(Webhook.disabled_at).is_(None),
            col(User.is_active).is_(True),  # a disabled client's webhooks stop at once
            # In order per household: nothing earlier of it still open for this webhook...
            ~exists().where(
                col(earlier.webhook_id) == col(d.webhook_id),
                col(earlier.household_id) == col(d.household_id),
                col(earlier.event_id) < col(d.event_id),
                col(earlier.status).in_(OPEN_STATUSES),
            ),
            # ...or not fanned out yet.
            ~exists().where(
                col(unsent.household_id) == col(d.household_id),
                col(unsent.dispatched_at).is_(None),
                col(unsent.id) < col(d.event_id),
            ),
        )
        .order_by(col(d.next_attempt_at), col(d.event_id))
    )


def encode(document: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


async def claim_deliveries(
    transactions: Transactions, settings: Settings, *, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to this worker."""
    now = utcnow()
    async with transactions(writing=False) as session:
        if await session.scalar(_due(now).limit(1)) is None:
            return []
    lease = now + timedelta(seconds=2 * settings.webhook_timeout_seconds + 30)
    async with transactions(writing=True) as session:
        ids = list(
            await session.scalars(
                _due(now).limit(limit).with_for_update(skip_locked=True, of=WebhookDelivery)
            )
        )
        if not ids:
            return []
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(ids))
            .values(claimed_until=lease)
        )
        rows = (
            await session.execute(
                select(WebhookDelivery, WebhookEvent, Webhook.url, Webhook.secret)
                .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
                .join(Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id))
                .where(col(WebhookDelivery.id).in_(ids))
                .order_by(col(WebhookDelivery.event_id))
            )
        ).all()
    return [
        Claimed(
            delivery_id=delivery.id,
            attempt=delivery.attempts + 1,
            due_at=delivery.next_attempt_at,
            lease=lease,
            url=url,
            secret=secret,
            event_id=event.id or 0,  # always set: a stored event
            event_type=event.type,
            body=encode(event_document(event)),
        )
        for delivery, event, url, secret in rows
    ]


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None


def headers_for(claimed: Claimed) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Fieldsync-Event": claimed.event_type,
        "Fieldsync-Event-Id": str(claimed.event_id),
        "Fieldsync-Delivery": str(claimed.delivery_id),
        "Fieldsync-Attempt": str(claimed.attempt),
        # Standard Webhooks: the event's id is the message id, the same on every retry.
        **signature_headers(claimed.secret, message_id=str(claimed.event_id), body=claimed.body),
    }


def pinned_request(
    client: httpx.AsyncClient, claimed: Claimed, address: IPAddress
) -> httpx.Request:
    """The POST of `claimed`, sent to `address` whatever the host name resolves to by then.

    The URL's host becomes the address, while the name stays in the Host header and, for
    https, in the TLS server name, which httpcore also checks the certificate against (the
    `sni_hostname` request extension). Such a connection is closed after its one request:
    httpcore pools connections by the URL's host, now the address, and must not lend one
    opened (and certificate-checked) for one name to a request for another name on the same
    address.
    """
    url = httpx.URL(claimed.url)
    headers = headers_for(claimed)
    extensions: dict[str, Any] = {}
    host = url.raw_host.decode("ascii")
    if ip_literal(host) != address:
        headers["Host"] = url.netloc.decode("ascii")  # what httpx would send: port if not default
        headers["Connection"] = "close"
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        url = url.copy_with(host=str(address))
    return client.build_request(
        "POST", url, content=claimed.body, headers=headers, extensions=extensions
    )


async def _post(client: httpx.AsyncClient, claimed: Claimed, addresses: list[IPAddress]) -> int:
    """The status of the POST to the first address that takes the connection."""
    for address in addresses[:-1]:
        try:
            return await _post_to(client, claimed, address)
        except httpx.ConnectError:
            continue  # e.g. an IPv6 address without an IPv6 route: try the next
    return await _post_to(client, claimed, addresses[-1])


async def _post_to(client: httpx.AsyncClient, claimed: Claimed, address: IPAddress) -> int:
    response = await client.send(pinned_request(client, claimed, address), stream=True)
    await response.aclose()
    return response.status_code


async def send(client: httpx.AsyncClient, claimed: Claimed, settings: Settings) -> Outcome:
    """POST one delivery to an address checked just now; the receiver's body is never read."""
    try:
        addresses = await check_destination(
            claimed.url, allow_private=settings.webhook_allow_private_addresses
        )
        code = await _post(client, claimed, addresses)
    except RefusedAddress as exc:
        return Outcome(False, error=str(exc)[:500])
    except httpx.TimeoutException:
        return Outcome(False, error=f"no answer within {settings.webhook_timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= code < 300:
        return Outcome(True, status_code=code)
    return Outcome(False, status_code=code, error=f"HTTP {code}")


def retry_delay(attempts: int, settings: Settings, *, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `attempts` failures: doubling, capped, jittered
    down by up to half (so that receivers coming back are not hit by every retry at once)."""
    exponent = min(max(attempts - 1, 0), 32)
    delay = min(
        settings.webhook_retry_max_seconds, settings.webhook_retry_base_seconds * 2**exponent
    )
    return delay * (rng or random).uniform(0.5, 1.0)


async def record_outcome(
    transactions: Transactions, settings: Settings, claimed: Claimed, outcome: Outcome
) -> None:
    """Store what an attempt gave: delivered, retried later, or dead."""
    now = utcnow()
    async with transactions(writing=True) as session:
        delivery = await session.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
        if delivery is None:
            return  # pruned meanwhile
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if delivery.claimed_until == claimed.lease:
            delivery.claimed_until = None
        if outcome.delivered:
            delivery.delivered_at = now
        if delivery.next_attempt_at != claimed.due_at:
            return  # redelivery was asked for while this attempt was in flight: it stands
        if outcome.delivered:
            delivery.status = DeliveryStatus.delivered.value
        elif now >= delivery.expires_at:
            delivery.status = DeliveryStatus.dead.value
        else:
            delivery.status = DeliveryStatus.failed.value
            delivery.next_attempt_at = min(
                now + timedelta(seconds=retry_delay(delivery.attempts, settings)),
                delivery.expires_at,
            )


# --- the worker ----------------------------------------------------------------------------


class Worker:
    """Fans out, claims and sends, with up to `webhook_concurrency` deliveries in flight."""

    def __init__(
        self,
        transactions: Transactions,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.transactions = transactions
        self.settings = settings
        self._client = client
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Deliveries being sent (or their outcome recorded) right now."""
        return len(self._inflight)

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the address checks must hold
            limits=httpx.Limits(max_connections=self.settings.webhook_concurrency),
        ) as client:
            yield client

    async def _deliver(self, client: httpx.AsyncClient, claimed: Claimed) -> None:
        outcome = await send(client, claimed, self.settings)
        if not outcome.delivered:
            log.info(
                "webhooks: delivery %s of event %s failed (attempt %d): %s",
                claimed.delivery_id,
                claimed.event_id,
                claimed.attempt,
                outcome.error,
            )
        await record_outcome(self.transactions, self.settings, claimed, outcome)

    def _start(self, client: httpx.AsyncClient, claimed: Iterable[Claimed]) -> None:
        for one in claimed:
            task = asyncio.create_task(
                self._deliver(client, one), name=f"webhook-{one.delivery_id}"
            )
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhooks: recording a delivery failed", exc_info=task.exception())

    async def _round(self, client: httpx.AsyncClient, *, drain: bool = False) -> int:
        while await dispatch_events(self.transactions, self.settings) and drain:
            pass
        free = self.settings.webhook_concurrency - len(self._inflight)
        if free <= 0:
            return 0
        claimed = await claim_deliveries(self.transactions, self.settings, limit=free)
        self._start(client, claimed)
        return len(claimed)

    async def run_once(self) -> int:
        """Fan every event out, then send what is due now and wait for the answers; how many
        deliveries were attempted."""
        async with self._http() as client:
            started = await self._round(client, drain=True)
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            return started

    async def run(self) -> None:
        """Deliver until cancelled; an idle worker looks again every poll interval."""
        poll = self.settings.webhook_poll_interval_seconds
        async with self._http() as client:
            try:
                while True:
                    try:
                        await self._round(client)
                    except Exception:  # the database is away, say: try again next round
                        log.exception("webhooks: worker round failed")
                    if self._inflight:
                        # A finished delivery may free the next event of its household.
                        await asyncio.wait(
                            set(self._inflight), timeout=poll, return_when=asyncio.FIRST_COMPLETED
                        )
                    else:
                        await asyncio.sleep(poll)
            finally:
                for task in list(self._inflight):
                    task.cancel()
                await asyncio.gather(*self._inflight, return_exceptions=True)


@contextlib.asynccontextmanager
async def deliver_in_background(state: Any, settings: Settings) -> AsyncIterator[Worker]:
    """Run a worker while the app serves (its lifespan); stopped when the app stops.

    Deliveries in flight at shutdown are sent again once their lease runs out.
    """
    worker = Worker(partial(transaction, state), settings)
    task = asyncio.create_task(worker.run(), name="deliver-webhooks")
    try:
        yield worker
    finally:
        in_flight = worker.in_flight
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info(
            "webhooks: worker stopped (%d deliveries in flight are sent again once their "
            "leases run out)",
            in_flight,
        )
