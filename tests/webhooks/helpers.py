"""Webhook tests: a real receiver on loopback, the worker on the test's session, builders."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from app.auth.principal import ROLE_SCOPES, Principal
from app.core.config import Settings, get_settings
from app.users.models import Role, User
from app.webhooks import service
from app.webhooks.models import Webhook, WebhookEvent
from app.webhooks.schemas import WebhookCreate
from tests.builders import COUNTY_A, World

API = "/api/v1"
ALL_TYPES = [
    "visit.created",
    "household.status_changed",
    "household.risk_flagged",
    "measure.completed",
    "sync.batch_received",
    "monitoring.case_identified",
    "monitoring.case_cleared",
]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_by(self, secret: str) -> bool:
        """Whether the Standard Webhooks library verifies this delivery with `secret`."""
        try:
            StandardWebhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True


class Receiver:
    """An HTTP server on a loopback port, in a thread, that records what is POSTed to it.

    `answer(n, event)` gives the status of the n-th request (0-based, in the order answered)
    carrying `event`; by default 200. `delay` seconds pass before each answer.
    """

    def __init__(
        self,
        answer: Callable[[int, dict[str, Any]], int] | None = None,
        *,
        delay: float = 0,
        gate: threading.Event | None = None,
    ) -> None:
        self.answer = answer or (lambda n, event: 200)
        self.delay = delay
        self.gate = gate  # when given, every answer waits until it is set
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.gate is not None:
                    receiver.gate.wait(timeout=120)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.answer(len(receiver.received), json.loads(body))
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url + "/moved")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        return [r for r in self.snapshot() if 200 <= r.answered < 300]


def fast_settings(**overrides: Any) -> Settings:
    """The test settings with the worker's waits shortened and loopback receivers allowed."""
    values: dict[str, Any] = {
        "webhook_allow_private_addresses": True,
        "webhook_poll_interval_seconds": 0.02,
        "webhook_retry_base_seconds": 0.05,
        "webhook_retry_max_seconds": 0.2,
        "webhook_timeout_seconds": 5.0,
        "webhook_concurrency": 4,
    }
    return get_settings().model_copy(update=values | overrides)


class SessionTransactions:
    """Transactions for the worker on the test's session (savepoints, rolled back at the end),
    one at a time, as the session is one connection. Hold `lock` to keep the worker out of
    the database (e.g. to stop it between transactions: a task cancelled inside a savepoint
    of the shared session would leave the session unusable for the rest of the test)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.lock = asyncio.Lock()

    @asynccontextmanager
    async def __call__(
        self, *, writing: bool, numbered: bool = True
    ) -> AsyncIterator[AsyncSession]:
        async with self.lock, self.session.begin_nested():
            yield self.session


def session_transactions(session: AsyncSession) -> SessionTransactions:
    return SessionTransactions(session)


def principal_of(
    user: User, regions: tuple[str, ...], *, scopes: tuple[str, ...] | None = None
) -> Principal:
    role = Role(user.role)
    return Principal(
        user=user,
        role=role,
        region_codes=regions,
        scopes=frozenset(ROLE_SCOPES[role] if scopes is None else scopes),
    )


async def make_webhook(
    session: AsyncSession,
    *,
    owner: User,
    regions: tuple[str, ...],
    url: str = "https://hooks.example.com/fieldsync",
    event_types: list[str] | None = None,
    region_code: str | None = None,
    scopes: tuple[str, ...] | None = None,
) -> Webhook:
    """A webhook created as `owner` would create it (URL checks as in tests: loopback allowed)."""
    data = WebhookCreate.model_validate(
        {"url": url, "event_types": event_types or ALL_TYPES, "region_code": region_code}
    )
    return await service.create_webhook(
        session,
        principal=principal_of(owner, regions, scopes=scopes),
        data=data,
        settings=fast_settings(),
    )


async def events(session: AsyncSession, **where: Any) -> list[WebhookEvent]:
    """The outbox, oldest first (flushed first)."""
    await session.flush()
    stmt = select(WebhookEvent).order_by(col(WebhookEvent.id))
    for name, value in where.items():
        stmt = stmt.where(getattr(WebhookEvent, name) == value)
    return list(await session.scalars(stmt))


async def event_count(session: AsyncSession) -> int:
    await session.flush()
    return int(await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


async def create_via_api(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    payload = {"url": "https://hooks.example.com/fieldsync", "event_types": ALL_TYPES} | body
    return await client.post(f"{API}/webhooks", json=payload, headers=headers)


def new_id() -> str:
    return str(uuid.uuid4())


async def wait_until(condition: Callable[[], bool], *, seconds: float = 30) -> None:
    """Let the worker (a task of this loop) run until `condition` holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        await asyncio.sleep(0.02)


async def listening(session: AsyncSession, world: World) -> Webhook:
    """An active webhook (county A's admin, all events): events are written only while one is."""
    return await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,))
