"""Sync against a real server process: SIGKILL in the middle of batches, and the feed under load.

Each test gets a fresh database of the selected backend, migrated with the real migrations and
seeded minimally (two villages, one officer, twenty households: a demo seed costs 20 s), and
`fieldsync serve` on a loopback port (see server_helpers for why restarts are forked). The
database is checked directly, through an engine of the test's own, never through the API.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, text
from sqlmodel import col, select

from app.households.models import Household
from app.records.models import Visit
from app.sync import changelog
from app.sync.models import Change, ChangeCounter, SyncBatch
from tests.builders import PASSWORD
from tests.databases import BACKEND
from tests.deployment import OFFICER, Database, Deployment, deploy
from tests.sync.server_helpers import login

pytestmark = pytest.mark.slow


@pytest.fixture
def deployment(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    """A fresh, migrated, minimally seeded database and `fieldsync serve` on it, started."""
    with deploy(tmp_path) as deployed:
        yield deployed


# --- batches ------------------------------------------------------------------------------

VISITED_AT = (datetime.now(UTC) - timedelta(days=1)).isoformat()


def _visit(record_id: uuid.UUID, revision: int, household_id: uuid.UUID) -> dict[str, Any]:
    return {
        "type": "visit",
        "id": str(record_id),
        "revision": revision,
        "data": {
            "household_id": str(household_id),
            "visited_at": VISITED_AT,
            "mode": "in_home",
            "findings": f"第{revision}次核实: 两不愁三保障均已落实, 光伏收益按月到账",
            "checks": {"food": "ok", "housing": "ok", "water": "ok"},
        },
    }


@dataclass
class Batch:
    body: dict[str, Any]
    new: dict[uuid.UUID, int] = field(default_factory=dict)  # id: revision, created by it
    revised: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)  # id: (before, after)

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.body["batch_id"])

    def expected_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("unchanged", "stale", "conflict", "rejected", "held"), 0)
        return {**counts, "created": len(self.new), "updated": len(self.revised)}


class BatchMaker:
    """Batches of one device: new visits, and the next revision of visits sent before."""

    def __init__(self, rng: random.Random, households: list[uuid.UUID], device_id: str) -> None:
        self.rng = rng
        self.households = households
        self.device_id = device_id
        self.revisions: dict[uuid.UUID, int] = {}  # as they will be once every batch is applied
        self.household_of: dict[uuid.UUID, uuid.UUID] = {}

    def make(self, *, new: int, revised: int) -> Batch:
        batch = Batch(
            {
                "batch_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "device_id": self.device_id,
                "app_version": "2.3.0",
                "records": [],
            }
        )
        for record_id in self.rng.sample(sorted(self.revisions), min(revised, len(self.revisions))):
            before = self.revisions[record_id]
            batch.revised[record_id] = (before, before + 1)
            batch.body["records"].append(
                _visit(record_id, before + 1, self.household_of[record_id])
            )
        for _ in range(new):
            record_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
            household = self.rng.choice(self.households)
            self.household_of[record_id] = household
            batch.new[record_id] = 1
            batch.body["records"].append(_visit(record_id, 1, household))
        self.rng.shuffle(batch.body["records"])
        self.revisions.update({i: after for i, (_, after) in batch.revised.items()})
        self.revisions.update(batch.new)
        return batch


def _stored_state(db: Database, batch: Batch) -> str:
    """Where the batch stands in the database: "all" (applied) or "none" (no trace of it).

    Anything in between, or records without the batch's row (or the reverse), fails the test.
    """
    ids = [*batch.new, *batch.revised]
    stored = dict(db.rows(select(col(Visit.id), col(Visit.revision)).where(col(Visit.id).in_(ids))))
    has_row = bool(db.scalars(select(col(SyncBatch.id)).where(col(SyncBatch.id) == batch.id)))
    applied = batch.new | {i: after for i, (_, after) in batch.revised.items()}
    before = {i: revision for i, (revision, _) in batch.revised.items()}
    if stored == applied and has_row:
        return "all"
    if stored == before and not has_row:
        return "none"
    created = sum(1 for i in batch.new if i in stored)
    revised = sum(1 for i, (_, a) in batch.revised.items() if stored.get(i) == a)
    pytest.fail(
        f"batch {batch.id} half-applied: {created}/{len(batch.new)} new visits stored, "
        f"{revised}/{len(batch.revised)} revisions applied, sync_batch row: {has_row}"
    )


def _post(client: httpx.Client, base: str, token: str, batch: Batch) -> httpx.Response:
    return client.post(
        f"{base}/api/v1/sync/batches",
        json=batch.body,
        headers={"Authorization": f"Bearer {token}"},
    )


def _post_until_answered(base: str, token: str, batch: Batch, *, deadline: float) -> httpx.Response:
    """The phone's loop: the same batch again until an answer arrives."""
    with httpx.Client(timeout=60) as client:
        while True:
            try:
                return _post(client, base, token, batch)
            except httpx.TransportError:
                assert time.monotonic() < deadline, "no answer to the batch"
                time.sleep(0.05)


def _check_answer(response: httpx.Response, batch: Batch, *, replay: bool) -> None:
    assert response.status_code == 200, response.text
    assert response.headers.get("Idempotent-Replay") == ("true" if replay else None)
    answer = response.json()
    assert answer["batch_id"] == str(batch.id)
    assert answer["counts"] == batch.expected_counts(), answer["counts"]
    assert [r["id"] for r in answer["results"]] == [r["id"] for r in batch.body["records"]]


# --- acceptance 2: SIGKILL in the middle of batches -----------------------------------------


class InFlight(threading.Thread):
    """A batch sent from a thread of its own, so that the server can be killed meanwhile."""

    def __init__(self, base: str, token: str, batch: Batch) -> None:
        super().__init__()
        self.base, self.token, self.batch = base, token, batch
        self.connected = threading.Event()
        self.response: httpx.Response | None = None
        self.error: httpx.TransportError | None = None
        self.start()
        # Connected beforehand: the clock starts as the batch goes out, not before.
        assert self.connected.wait(timeout=30), "could not connect"

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            client.get(f"{self.base}/healthz").raise_for_status()
            self.connected.set()
            try:
                self.response = _post(client, self.base, self.token, self.batch)
            except httpx.TransportError as exc:
                self.error = exc


KILLS = 20
NEW_PER_BATCH = 80
REVISED_PER_BATCH = 20


def test_sigkill_mid_batch_leaves_every_batch_whole_or_absent(deployment: Deployment) -> None:
    """Acceptance 2: the server is SIGKILLed while batches are in flight, 20 times; the phone
    retries each batch until answered. Each batch is stored entirely or not at all after every
    kill, and every record ends up stored exactly once."""
    server, db = deployment.server, deployment.db
    rng = random.Random(20161124)
    device = "android-crash-test"
    token = login(server.base, OFFICER, PASSWORD, device_id=device)
    maker = BatchMaker(rng, deployment.households, device)
    batches = [maker.make(new=NEW_PER_BATCH, revised=REVISED_PER_BATCH) for _ in range(KILLS * 2)]
    started = time.monotonic()
    deadline = started + 240

    # The first batch unharmed: how long a batch takes sets the window the kills fall in.
    clock = time.monotonic()
    _check_answer(
        _post_until_answered(server.base, token, batches[0], deadline=deadline),
        batches[0],
        replay=False,
    )
    window = 0.9 * (time.monotonic() - clock)

    kills: Counter[str] = Counter()  # state of the killed batch: "all" or "none"
    missed = 0  # the answer came back before the kill: not a kill in the middle of a batch
    restart_seconds: list[float] = []
    sent = 1
    for round_, batch in enumerate(batches[1:], start=1):
        if sum(kills.values()) == KILLS:
            break
        sent += 1
        in_flight = InFlight(server.base, token, batch)
        if round_ % 5 == 0:
            # Right after the commit: the answer may or may not have left. Killed before it
            # did, the batch is stored and the phone never heard: the retry gets the replay.
            db.wait_for_batch(batch.id)
        else:
            time.sleep(rng.uniform(0.01, window))
        server.kill()
        in_flight.join()
        db.wait_for_server_backends_to_end()
        state = _stored_state(db, batch)  # fails on a half-applied batch
        if in_flight.response is not None:
            missed += 1
            _check_answer(in_flight.response, batch, replay=False)
            assert state == "all"
        else:
            assert not isinstance(in_flight.error, httpx.ConnectError), "killed before sending"
            kills[state] += 1
        restart_seconds.append(server.start())

        if in_flight.response is None:
            response = _post_until_answered(server.base, token, batch, deadline=deadline)
            # Applied before the kill: the stored answer; otherwise applied now, once.
            _check_answer(response, batch, replay=state == "all")
            assert _stored_state(db, batch) == "all"

    assert sum(kills.values()) == KILLS, f"only {sum(kills.values())} kills in flight"
    print(
        f"\n{BACKEND}: {sent} batches of {NEW_PER_BATCH + REVISED_PER_BATCH} visits, "
        f"a batch takes {window:.2f} s; {KILLS} kills in flight (batch found "
        f"{kills['none']}x not applied, {kills['all']}x applied but unanswered), "
        f"{missed} answered before the kill; restart {min(restart_seconds):.2f}-"
        f"{max(restart_seconds):.2f} s; {time.monotonic() - started:.1f} s in all"
    )

    # Every record exactly once, at the revision of the last batch that touched it.
    applied = batches[:sent]
    expected: dict[uuid.UUID, int] = {}
    for batch in applied:
        expected.update(batch.new)
        expected.update({i: after for i, (_, after) in batch.revised.items()})
    duplicates = db.rows(
        select(col(Visit.id), func.count()).group_by(col(Visit.id)).having(func.count() > 1)
    )
    assert duplicates == []
    assert dict(db.rows(select(col(Visit.id), col(Visit.revision)))) == expected
    stored_batches = db.rows(
        select(col(SyncBatch.id), col(SyncBatch.record_count)).where(
            col(SyncBatch.device_id) == device
        )
    )
    assert sorted(stored_batches) == sorted((b.id, NEW_PER_BATCH + len(b.revised)) for b in applied)
    # The change log survived the kills too: one row per visit, at its revision, numbered
    # below the counter.
    changes = db.rows(
        select(col(Change.entity_id), col(Change.version), col(Change.seq)).where(
            col(Change.entity_type) == "visit"
        )
    )
    assert {entity_id: version for entity_id, version, _ in changes} == expected
    assert len(changes) == len(expected)
    if BACKEND == "sqlite":
        counter = db.scalars(select(col(ChangeCounter.value)))[0]
    else:
        counter = db.scalars(text(f"SELECT last_value FROM {changelog.SEQUENCE}"))[0]
    assert max(seq for _, _, seq in changes) <= counter


# --- acceptance 4: the change feed while batches are written --------------------------------

# Two phones of the officer, so that write transactions overlap on the server: with a single
# writer they never would, and neither the counter lock nor the database's write lock is tested.
WRITERS = 2
BATCHES_PER_WRITER = 12
FEED_PAGE = 50


@dataclass
class Writer:
    device: str
    token: str
    maker: BatchMaker
    batches: int = 0
    slowest: float = 0.0
    server_errors: list[str] = field(default_factory=list)  # retried, as a phone would
    errors: list[str] = field(default_factory=list)


def _write(base: str, writer: Writer, stop: threading.Event) -> None:
    with httpx.Client(timeout=60) as client:
        for _ in range(BATCHES_PER_WRITER):
            batch = writer.maker.make(new=50, revised=50)
            for _attempt in range(5):
                if stop.is_set():
                    return
                clock = time.monotonic()
                response = _post(client, base, writer.token, batch)
                took = time.monotonic() - clock
                writer.slowest = max(writer.slowest, took)
                if response.status_code < 500:
                    break
                writer.server_errors.append(
                    f"batch {batch.id}: {response.status_code} after {took:.2f} s: "
                    f"{response.text[:300]}"
                )
            try:
                _check_answer(response, batch, replay=False)
            except AssertionError as exc:
                writer.errors.append(f"batch {batch.id}: {exc}: {response.text[:300]}")
                stop.set()
                return
            writer.batches += 1


@dataclass
class Reader:
    token: str
    cursor: str | None = None
    delivered: list[tuple[str, str, int]] = field(default_factory=list)
    pages: int = 0
    pages_while_writing: int = 0
    errors: list[str] = field(default_factory=list)

    def page(self, client: httpx.Client, base: str) -> bool:
        """One page; whether the feed says there is more."""
        params: dict[str, Any] = {"limit": FEED_PAGE}
        if self.cursor is not None:
            params["cursor"] = self.cursor
        response = client.get(
            f"{base}/api/v1/sync/changes",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        if response.status_code != 200:
            self.errors.append(f"GET /sync/changes {response.status_code}: {response.text[:500]}")
            raise RuntimeError(self.errors[-1])
        page = response.json()
        assert len(page["changes"]) <= FEED_PAGE
        self.delivered += [(c["type"], c["id"], c["version"]) for c in page["changes"]]
        self.cursor = page["next_cursor"]
        self.pages += 1
        return bool(page["has_more"])


def _read_while(base: str, reader: Reader, writing: threading.Event, stop: threading.Event) -> None:
    with httpx.Client(timeout=60) as client:
        while writing.is_set() and not stop.is_set():
            try:
                more = reader.page(client, base)
            except RuntimeError:
                stop.set()
                return
            reader.pages_while_writing += 1
            if not more:
                time.sleep(0.05)  # caught up: a phone would wait far longer


def test_change_feed_delivers_each_change_once_while_batches_arrive(
    deployment: Deployment,
) -> None:
    """Acceptance 4: phones write batches (new visits and revisions) while another pages the
    feed; once the writers stop and the reader has drained the feed, every change came exactly
    once and the latest version of everything matches the database."""
    server, db = deployment.server, deployment.db
    rng = random.Random(4)
    writers = []
    for n in range(WRITERS):
        device = f"android-writer-{n}"
        token = login(server.base, OFFICER, PASSWORD, device_id=device)
        maker = BatchMaker(random.Random(rng.getrandbits(64)), deployment.households, device)
        writers.append(Writer(device, token, maker))
    reader = Reader(login(server.base, OFFICER, PASSWORD, device_id="android-reader"))

    started = time.monotonic()
    writing, stop = threading.Event(), threading.Event()
    writing.set()
    threads = [
        threading.Thread(target=_write, args=(server.base, writer, stop)) for writer in writers
    ]
    feed = threading.Thread(target=_read_while, args=(server.base, reader, writing, stop))
    feed.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    feed.join()
    wrote = time.monotonic() - started
    assert not reader.errors, reader.errors
    for writer in writers:
        assert not writer.errors, writer.errors
        assert writer.batches == BATCHES_PER_WRITER
    while_writing = len(reader.delivered)
    with httpx.Client(timeout=60) as client:
        while reader.page(client, server.base):
            pass

    print(
        f"\n{BACKEND}: {WRITERS} writers x {BATCHES_PER_WRITER} batches of 100 in {wrote:.1f} s, "
        f"slowest batch {max(w.slowest for w in writers):.2f} s, "
        f"reader {reader.pages_while_writing} pages ({while_writing} changes) meanwhile, "
        f"{reader.pages} pages ({len(reader.delivered)} changes) in all"
    )
    assert reader.pages_while_writing >= 10 and while_writing > 0, "no real concurrency"

    twice = [key for key, n in Counter(reader.delivered).items() if n > 1]
    assert twice == [], f"delivered more than once: {twice[:10]}"
    latest: dict[tuple[str, str], int] = {}
    for kind, object_id, version in reader.delivered:
        assert version > latest.get((kind, object_id), 0), f"{kind} {object_id} went backwards"
        latest[(kind, object_id)] = version
    stored = {("visit", str(i)): r for i, r in db.rows(select(col(Visit.id), col(Visit.revision)))}
    stored |= {
        ("household", str(i)): v
        for i, v in db.rows(select(col(Household.id), col(Household.version)))
    }
    assert len(stored) == len(deployment.households) + sum(len(w.maker.revisions) for w in writers)
    missing = stored.keys() - latest.keys()
    assert not missing, f"{len(missing)} objects never delivered, e.g. {sorted(missing)[:5]}"
    assert latest == stored
    # Last, so that the feed is checked whatever happened: a phone retries a 5xx, but the
    # server must not answer one to batches that are merely concurrent.
    server_errors = [e for w in writers for e in w.server_errors]
    assert not server_errors, (server_errors, server.log_tail(30))
