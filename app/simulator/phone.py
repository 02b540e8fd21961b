"""One phone's end of the day: log in, download its villages, record offline, sync, check.

The phone talks to the server only through the public API, as the app does, and keeps retrying
a request until an answer arrives: after a lost request or answer (backing off), after 429 or
503 (waiting as Retry-After says), after a 401 (logging in again). A batch is always sent again
with the same batch_id and the same bytes, so a batch the server already applied is answered
with its stored answer (`Idempotent-Replay: true`).

Per record, the server's result decides: `created`, `updated` and `unchanged` are done;
`conflict` (the officer's other device wrote this revision first) is re-read from the change feed
and sent again as the next revision; `stale` (the server holds a later revision) is re-read and
the server's copy kept; `rejected` is counted, and sent again only while `retryable`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.auth.schemas import TokenResponse
from app.simulator.link import AnswerLost, FlakyLink, LinkProfile, LinkStats
from app.simulator.records import (
    SEGMENTS,
    HouseholdCopy,
    LocalRecord,
    new_id,
    record_day,
    workday_start,
)
from app.sync.schemas import ChangeEntry, ChangesPage, ItemStatus, SyncBatchOut

API = "/api/v1"
TOKEN = f"{API}/auth/token"
BATCHES = f"{API}/sync/batches"
CHANGES = f"{API}/sync/changes"
FEED_PAGE = 500  # the largest page the feed gives
TIMEOUT = httpx.Timeout(60.0, connect=10.0)  # an app's patience on a bad link
BACK_OFF_MOST = 10.0  # seconds between tries, at the most
RETRY_AFTER_MOST = 60.0  # seconds: a longer Retry-After is waited out in steps of this
MAX_ROUNDS = 5  # sync rounds per phase: conflicts and retryable rejections are sent again
FEED_LAG_WAITS = (0.5, 1.0, 2.0, 4.0)  # seconds before asking the feed again for what is missing
# Held records are the county's now: the phone stops sending them.
ACKNOWLEDGED = {ItemStatus.created, ItemStatus.updated, ItemStatus.unchanged, ItemStatus.held}
WRITTEN = {record_type.value for record_type in SEGMENTS}  # the kinds of record phones make


class PhoneFailed(Exception):
    """The phone gave up: no answer after all its retries, or an answer it cannot act on."""


@dataclass(frozen=True)
class Plan:
    """What every phone of a run does."""

    today: date
    records: int = 20
    batch_size: int = 50  # the app sends at most this many records per batch on a slow link
    photos: int = 0  # at most one per visit
    conflict_share: float = 0.0  # of the synced records, edited on the officer's other device too
    retry_base_seconds: float = 0.5  # the first back-off after a lost request; doubled each time
    max_attempts: int = 20  # per request: 2–3 minutes of back-off when the server is down
    app_version: str = "simulator-1"


@dataclass(frozen=True)
class PhoneSpec:
    index: int
    username: str
    password: str
    device_id: str
    profile: LinkProfile
    seed: str

    @property
    def fast(self) -> bool:
        return self.profile.perfect


@dataclass
class PhoneStats:
    retries: int = 0  # requests sent again, whatever the reason
    waits: int = 0  # 429 and 503 answers waited out
    timeouts: int = 0
    batches: int = 0
    batch_seconds: list[float] = field(default_factory=list)  # send to answer, answered tries
    replays_expected: int = 0  # batches whose answer the link lost after the server had it
    replays_answered: int = 0
    results: Counter[str] = field(default_factory=Counter)
    rejected_codes: Counter[str] = field(default_factory=Counter)
    edits_elsewhere: int = 0
    adopted: int = 0  # stale records whose server copy the phone kept
    rebased: int = 0  # conflicts sent again as the next revision
    photos_uploaded: int = 0
    photos_missing: int = 0  # uploaded, yet not on the server at the end
    on_server: int = 0  # records the feed shows stamped with this device
    late: int = 0  # records the feed showed only when asked again (held back by its watermark)
    skipped_by_feed: int = 0  # shown from the download's cursor, never after the read's end
    lost: int = 0
    duplicates: int = 0
    failed: str | None = None


@dataclass
class Login:
    """A client logged in on one device: the phone itself, or the officer's other device."""

    client: httpx.AsyncClient
    device_id: str
    token: str | None = None


def retry_after(response: httpx.Response) -> float:
    """Seconds to wait from Retry-After (seconds or an HTTP date); 1 s when absent."""
    value = response.headers.get("Retry-After", "1").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = 1.0
    return min(max(seconds, 0.0), RETRY_AFTER_MOST)


class Phone:
    def __init__(
        self,
        spec: PhoneSpec,
        plan: Plan,
        *,
        base_url: str,
        transport: Callable[[], httpx.AsyncBaseTransport],
    ) -> None:
        self.spec = spec
        self.plan = plan
        self.base_url = base_url
        self.transport = transport
        self.rng = random.Random(f"{spec.seed}/content")
        self._retry_rng = random.Random(f"{spec.seed}/retry")
        self.link = FlakyLink(transport(), spec.profile, random.Random(f"{spec.seed}/link"))
        self.stats = PhoneStats()
        self.households: dict[uuid.UUID, HouseholdCopy] = {}
        self.records: list[LocalRecord] = []
        self.view: dict[tuple[str, uuid.UUID], ChangeEntry] = {}  # the server's, from the feed
        self.download_cursor: str | None = None
        self.cursor: str | None = None
        self.done = False

    @property
    def acknowledged(self) -> int:
        return sum(not r.pending and not r.given_up for r in self.records)

    @property
    def link_stats(self) -> LinkStats:
        return self.link.stats

    def _client(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=transport, base_url=self.base_url, timeout=TIMEOUT, trust_env=False
        )

    async def run(self) -> None:
        """The whole day; a phone that gives up notes why in `stats.failed`."""
        phone = Login(self._client(self.link), self.spec.device_id)
        try:
            await self._login(phone)
            await self._download(phone)
            self.records = record_day(
                self.rng,
                sorted(self.households.values(), key=lambda h: h.id),
                count=self.plan.records,
                photos=self.plan.photos,
                start=workday_start(self.plan.today),
            )
            await self._sync(phone)
            if await self._edit_elsewhere():
                await self._sync(phone)
            await self._upload_photos(phone)
            await self._verify(phone)
        except PhoneFailed as exc:
            self.stats.failed = str(exc)
        finally:
            await phone.client.aclose()
            self.done = True

    # --- requests --------------------------------------------------------------------------

    async def _back_off(self, attempt: int) -> None:
        delay = min(self.plan.retry_base_seconds * 2**attempt, BACK_OFF_MOST)
        if delay > 0:
            await asyncio.sleep(delay * self._retry_rng.uniform(0.5, 1.0))

    async def _send(
        self, login: Login, method: str, url: str, *, anonymous: bool = False, **kwargs: Any
    ) -> tuple[httpx.Response, float, bool]:
        """Send until an answer arrives: the answer, the seconds its attempt took, and whether
        an earlier attempt reached the server but lost its answer."""
        headers = kwargs.pop("headers", {})
        answer_lost = logged_in_again = False
        for attempt in range(self.plan.max_attempts):
            if attempt:
                self.stats.retries += 1
            if not anonymous:
                headers["Authorization"] = f"Bearer {login.token}"
            started = time.perf_counter()
            try:
                response = await login.client.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                answer_lost |= isinstance(exc, AnswerLost)
                self.stats.timeouts += isinstance(exc, httpx.TimeoutException)
                await self._back_off(attempt)
                continue
            seconds = time.perf_counter() - started
            if response.status_code in (429, 503):
                self.stats.waits += 1
                await asyncio.sleep(retry_after(response))
                continue
            if response.status_code == 401 and not anonymous and not logged_in_again:
                logged_in_again = True  # the access token expired: log in again, once
                await self._login(login)
                continue
            return response, seconds, answer_lost
        raise PhoneFailed(f"{method} {url}: no answer after {self.plan.max_attempts} attempts")

    async def _login(self, login: Login) -> None:
        form = {
            "grant_type": "password",
            "username": self.spec.username,
            "password": self.spec.password,
            "device_id": login.device_id,
            "app_version": self.plan.app_version,
        }
        response, _, _ = await self._send(login, "POST", TOKEN, data=form, anonymous=True)
        if response.status_code != 200:
            raise PhoneFailed(
                f"login of {self.spec.username} refused: {response.status_code} "
                f"{response.text[:200]}"
            )
        login.token = TokenResponse.model_validate_json(response.content).access_token

    # --- the change feed -------------------------------------------------------------------

    async def _read_feed(self, login: Login, cursor: str | None) -> tuple[list[ChangeEntry], str]:
        """Every change since `cursor` (a first download without one) and the cursor after it."""
        entries: list[ChangeEntry] = []
        while True:
            params: dict[str, Any] = {"limit": FEED_PAGE}
            if cursor is not None:
                params["cursor"] = cursor
            response, _, _ = await self._send(login, "GET", CHANGES, params=params)
            if response.status_code == 410 and cursor is not None:
                entries, cursor = [], None  # the server cannot continue: download afresh
                continue
            if response.status_code != 200:
                raise PhoneFailed(f"change feed: {response.status_code} {response.text[:200]}")
            page = ChangesPage.model_validate_json(response.content)
            entries += page.changes
            cursor = page.next_cursor
            if not page.has_more:
                return entries, cursor

    def _take(self, entries: list[ChangeEntry]) -> None:
        """Bring the phone's copy of its villages up to date."""
        for entry in entries:
            if entry.type == "household":
                if entry.op == "upsert" and entry.data is not None:
                    self.households[entry.id] = HouseholdCopy(
                        entry.id, entry.data["village_code"], int(entry.data["household_size"])
                    )
                else:
                    self.households.pop(entry.id, None)
            else:
                self.view[(entry.type, entry.id)] = entry

    async def _download(self, phone: Login) -> None:
        entries, self.cursor = await self._read_feed(phone, None)
        self.download_cursor = self.cursor
        self._take(entries)
        if not self.households:
            raise PhoneFailed(f"{self.spec.username} has no households in its villages")

    # --- sync ------------------------------------------------------------------------------

    async def _sync(self, phone: Login) -> None:
        """Send what is pending, in batches, until the server has taken all it will take."""
        for _ in range(MAX_ROUNDS):
            pending = [r for r in self.records if r.pending]
            if not pending:
                return
            size = self.plan.batch_size
            for start in range(0, len(pending), size):
                await self._send_batch(phone, pending[start : start + size])
            await self._resolve(phone)

    async def _send_batch(self, phone: Login, chunk: list[LocalRecord]) -> None:
        batch = {
            "batch_id": str(new_id(self.rng)),
            "device_id": phone.device_id,
            "app_version": self.plan.app_version,
            "records": [r.item() for r in chunk],
        }
        raw = json.dumps(batch, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        response, seconds, answer_lost = await self._send(
            phone, "POST", BATCHES, content=gzip.compress(raw, mtime=0), headers=headers
        )
        if response.status_code != 200:
            raise PhoneFailed(f"batch refused: {response.status_code} {response.text[:300]}")
        answer = SyncBatchOut.model_validate_json(response.content)
        if [(r.type, r.id) for r in answer.results] != [(r.type.value, str(r.id)) for r in chunk]:
            raise PhoneFailed(f"the answer to batch {batch['batch_id']} names other records")
        self.stats.batches += 1
        self.stats.batch_seconds.append(seconds)
        self.stats.replays_expected += answer_lost
        self.stats.replays_answered += response.headers.get("Idempotent-Replay") == "true"
        for result, record in zip(answer.results, chunk, strict=True):
            self.stats.results[result.status.value] += 1
            record.status = result.status.value
            record.server_version = result.version
            if result.status in ACKNOWLEDGED:
                record.pending = False
            elif result.status is ItemStatus.rejected:
                self.stats.rejected_codes[result.code or "unknown"] += 1
                record.rejections += 1
                if not result.retryable or record.rejections >= MAX_ROUNDS:
                    record.pending, record.given_up = False, True

    async def _resolve(self, phone: Login) -> None:
        """Conflicts and stale records: read what the server holds, then go on from there."""
        unsettled = [r for r in self.records if r.pending and r.status in ("conflict", "stale")]
        if not unsettled:
            return
        entries, self.cursor = await self._read_feed(phone, self.cursor)
        self._take(entries)
        for record in unsettled:
            held = self.view.get((record.type.value, record.id))
            server = max(record.server_version or 0, held.version if held else 0)
            if record.status == "stale" and held is not None and held.data is not None:
                # A later revision came from elsewhere: keep the server's copy.
                record.adopt(held.data, revision=held.version)
                self.stats.adopted += 1
            else:
                # The officer's edit goes on top of the server's revision.
                record.body = record.body.model_copy(update={"revision": server + 1})
                self.stats.rebased += 1

    async def _edit_elsewhere(self) -> bool:
        """Some synced records are edited on the officer's other device, then on the phone
        (which has not seen that edit): the next sync meets conflicts and stale revisions."""
        chosen = [
            r
            for r in self.records
            if not r.pending and not r.given_up and self.rng.random() < self.plan.conflict_share
        ]
        if not chosen:
            return False
        other = Login(self._client(self.transport()), f"{self.spec.device_id}-desk")
        try:
            await self._login(other)
            for record in chosen:
                edits = self.rng.choice((1, 2))  # 1: a conflict follows; 2: the phone is stale
                for n in range(1, edits + 1):
                    body = record.edited(self.rng, revision=record.revision + n, where="镇上")
                    url = f"{API}/{SEGMENTS[record.type]}/{record.id}"
                    response, _, _ = await self._send(
                        other, "PUT", url, json=body.model_dump(mode="json", exclude_defaults=True)
                    )
                    if response.status_code not in (200, 201):
                        raise PhoneFailed(f"edit elsewhere: {response.status_code} {response.text}")
                    self.stats.edits_elsewhere += 1
                record.body = record.edited(self.rng, revision=record.revision + 1, where="入户")
                record.pending = True
        finally:
            await other.client.aclose()
        return True

    async def _upload_photos(self, phone: Login) -> None:
        for record in self.records:
            picture = record.photo
            if picture is None or record.given_up:
                continue
            response, _, _ = await self._send(
                phone,
                "PUT",
                f"{API}/photos/{picture.sha256}",
                params={"household_id": str(picture.household_id)},
                content=picture.content,
                headers={"Content-Type": "image/jpeg"},
            )
            if response.status_code not in (200, 201):
                raise PhoneFailed(f"photo refused: {response.status_code} {response.text[:300]}")
            self.stats.photos_uploaded += 1

    # --- the check -------------------------------------------------------------------------

    def _missing(self) -> list[LocalRecord]:
        """The phone's records the server does not show it, or shows at an older revision."""
        missing = []
        for record in self.records:
            held = self.view.get((record.type.value, record.id))
            if record.given_up:
                continue
            if held is None or held.op == "delete" or held.version < record.revision:
                missing.append(record)
        return missing

    async def _verify(self, phone: Login) -> None:
        """Read back from the server what the phone holds: what is missing or behind is lost;
        a record stamped with this device that the phone never made is a duplicate.

        The feed may hold back what was committed while an older transaction still runs (its
        watermark): what is missing is asked for again from where the read ended, a few times.
        What then shows only when read again from the download's cursor was skipped by the feed.
        """
        entries, cursor = await self._read_feed(phone, self.download_cursor)
        self._take(entries)
        missing = len(self._missing())
        for wait in FEED_LAG_WAITS:
            if not missing:
                break
            await asyncio.sleep(wait)
            more, cursor = await self._read_feed(phone, cursor)
            entries += more
            self._take(more)
            now = len(self._missing())
            self.stats.late += missing - now
            missing = now
        if missing:
            # Read from the download's cursor first, then once more from the read's end: what
            # the first shows and the second does not, the cursor has gone past.
            again, _ = await self._read_feed(phone, self.download_cursor)
            more, cursor = await self._read_feed(phone, cursor)
            entries += more
            self._take(more)
            shown = {(e.type, e.id): e.version for e in again if e.op == "upsert"}
            left = self._missing()
            self.stats.late += missing - len(left)
            for record in left:
                if shown.get((record.type.value, record.id), 0) >= record.revision:
                    self.stats.skipped_by_feed += 1
                else:
                    self.stats.lost += 1
        # No change is delivered twice (a record written again comes with its new revision).
        delivered = Counter((e.type, e.id, e.version) for e in entries if e.type in WRITTEN)
        self.stats.duplicates += sum(n - 1 for n in delivered.values())
        mine = {(r.type.value, r.id) for r in self.records}
        for key, entry in self.view.items():
            if entry.data is not None and entry.data.get("device_id") == phone.device_id:
                self.stats.on_server += 1
                self.stats.duplicates += key not in mine
        for record in self.records:
            if record.photo is not None and not record.given_up:
                url = f"{API}/photos/{record.photo.sha256}"
                response, _, _ = await self._send(phone, "GET", url)
                self.stats.photos_missing += response.status_code != 200
