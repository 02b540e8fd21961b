"""What a run of phones adds up to, and how it is printed."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.simulator.phone import Phone
from app.sync.schemas import ItemStatus


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Summary:
    phones: int = 0
    fast_phones: int = 0
    failed: list[str] = field(default_factory=list)  # "username (device): why"
    records: int = 0  # held by the phones
    acknowledged: int = 0  # taken by the server (stored, or the server's copy kept)
    rejected_for_good: int = 0
    pending: int = 0  # still unsent or unanswered when the phones stopped
    record_sends: int = 0  # records in answered batches, replays included
    results: Counter[str] = field(default_factory=Counter)
    rejected_codes: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    requests: int = 0
    retries: int = 0
    lost_before: int = 0
    lost_after: int = 0
    waits: int = 0
    timeouts: int = 0
    replays_expected: int = 0
    replays_answered: int = 0
    edits_elsewhere: int = 0
    rebased: int = 0
    adopted: int = 0
    photos: int = 0
    photos_uploaded: int = 0
    photos_missing: int = 0
    on_server: int = 0
    late: int = 0
    skipped_by_feed: int = 0
    lost: int = 0
    duplicates: int = 0
    # What the phones hold: (type, id) → revision, for checks beyond the API's (tests, benchmark).
    held: dict[tuple[str, uuid.UUID], int] = field(default_factory=dict, repr=False)
    fast_batch_seconds: list[float] = field(default_factory=list)
    slow_batch_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated or skipped by the change feed; every phone to the end."""
        return not (self.lost or self.duplicates or self.skipped_by_feed or self.failed)

    @property
    def all_in(self) -> bool:
        """Every record the phones hold is on the server, as they hold it."""
        return self.ok and not self.pending and not self.rejected_for_good

    @classmethod
    def of(cls, phones: Sequence[Phone], seconds: float) -> Summary:
        summary = cls(phones=len(phones), seconds=seconds)
        for phone in phones:
            stats, link = phone.stats, phone.link_stats
            summary.fast_phones += phone.spec.fast
            if stats.failed is not None:
                spec = phone.spec
                summary.failed.append(f"{spec.username} ({spec.device_id}): {stats.failed}")
            # What a phone that gave up holds and never saw acknowledged counts as lost.
            unconfirmed = len(phone.records) - phone.acknowledged if stats.failed else 0
            summary.lost += max(stats.lost, unconfirmed)
            summary.records += len(phone.records)
            summary.held.update(
                ((r.type.value, r.id), r.revision) for r in phone.records if not r.given_up
            )
            summary.acknowledged += phone.acknowledged
            summary.rejected_for_good += sum(r.given_up for r in phone.records)
            summary.pending += sum(r.pending for r in phone.records)
            summary.photos += sum(r.photo is not None for r in phone.records)
            summary.results.update(stats.results)
            summary.rejected_codes.update(stats.rejected_codes)
            for name in (
                "batches",
                "retries",
                "waits",
                "timeouts",
                "replays_expected",
                "replays_answered",
                "edits_elsewhere",
                "rebased",
                "adopted",
                "photos_uploaded",
                "photos_missing",
                "on_server",
                "late",
                "skipped_by_feed",
                "duplicates",
            ):
                setattr(summary, name, getattr(summary, name) + getattr(stats, name))
            summary.requests += link.requests
            summary.lost_before += link.lost_before
            summary.lost_after += link.lost_after
            latencies = (
                summary.fast_batch_seconds if phone.spec.fast else summary.slow_batch_seconds
            )
            latencies += stats.batch_seconds
        summary.record_sends = sum(summary.results.values())
        return summary

    def lines(self) -> list[str]:
        results = ", ".join(f"{s.value} {self.results.get(s.value, 0)}" for s in ItemStatus)
        lines = [
            f"phones: {self.phones} ({self.fast_phones} on a perfect link, "
            f"{self.phones - self.fast_phones} on slow, lossy links), {len(self.failed)} failed",
            f"records: {self.records} held by the phones, {self.acknowledged} acknowledged, "
            f"{self.on_server} on the server stamped with their devices, {self.pending} pending, "
            f"{self.rejected_for_good} rejected for good",
            f"results: {results} (in {self.batches} answered batches, {self.record_sends} records)",
            f"requests: {self.requests}, retries {self.retries}: {self.lost_before} lost before "
            f"the server, {self.lost_after} answers lost after it, {self.timeouts} timeouts, "
            f"{self.waits} waits for 429/503",
            f"replays answered: {self.replays_answered} "
            f"(batches whose answer was lost: {self.replays_expected})",
        ]
        if self.rejected_codes:
            codes = ", ".join(f"{c} {n}" for c, n in self.rejected_codes.most_common())
            lines.append(f"rejected: {codes}")
        if self.edits_elsewhere:
            lines.append(
                f"edited on the officers' other devices: {self.edits_elsewhere} revisions; "
                f"{self.rebased} conflicts sent again as the next revision, "
                f"{self.adopted} stale records replaced by the server's copy"
            )
        if self.photos:
            lines.append(
                f"photos: {self.photos} taken, {self.photos_uploaded} uploaded, "
                f"{self.photos_missing} missing on the server"
            )
        lines += [
            f"read back: {self.late} records shown by the change feed only when asked again "
            f"(held back by its watermark), {self.skipped_by_feed} skipped by it",
            f"lost: {self.lost}",
            f"duplicates: {self.duplicates}",
            f"batch latency, perfect links: {self._latency(self.fast_batch_seconds)}",
            f"batch latency, slow links: {self._latency(self.slow_batch_seconds)}",
            f"total time: {self.seconds:.1f} s",
        ]
        lines += [f"failed: {reason}" for reason in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"… and {len(self.failed) - 20} more failed phones")
        return lines

    @staticmethod
    def _latency(values: list[float]) -> str:
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        if p50 is None or p99 is None:
            return "no batches"
        return f"p50 {p50:.3f} s, p99 {p99:.3f} s ({len(values)} batches)"
