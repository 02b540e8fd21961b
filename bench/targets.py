"""Issue 15's targets, set against the figures the benchmarks left in bench/results/.

`make bench` runs every benchmark and then this; `make bench-targets` prints the table from
the figures of the last runs alone. "Before" is what the issue measured before the work (its
table, quoted); "now" is computed from the result files, each named beside its figure. A row
whose benchmark has not run says so rather than guessing.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from results import load

BACKENDS = ("sqlite", "postgresql")
SHORT = {"sqlite": "SQLite", "postgresql": "PG"}


@dataclass(frozen=True)
class Row:
    measure: str
    before: str
    target: str
    # The figure now (text) and whether the target is met, from the results; None: not run.
    now: Callable[[], tuple[str, bool] | None]


def _each(values: dict[str, tuple[str, bool]]) -> tuple[str, bool] | None:
    if not values:
        return None
    text = ", ".join(f"{SHORT.get(k, k)} {v[0]}" for k, v in values.items())
    return text, all(ok for _, ok in values.values())


def batches() -> tuple[str, bool] | None:
    found = load("sync_ingest") or {}
    values = {}
    for backend in BACKENDS:
        for c in (1, 8):
            r = found.get(f"{backend}-c{c}")
            if r:
                share = r["http"] / r["raw"]
                values[f"{SHORT[backend]} c{c}"] = (
                    f"{share:.1%} ({r['http']:,.0f}/s)",
                    share >= 0.5,
                )
    return _each(values)


def batch_p99() -> tuple[str, bool] | None:
    r = (load("sync_ingest") or {}).get("postgresql-c8")
    return (f"{r['p99']:.2f} s", r["p99"] < 1.0) if r else None


def _put() -> dict[str, Any]:
    found: dict[str, Any] = load("put_visits") or {}
    return found


def put_share() -> tuple[str, bool] | None:
    values = {}
    for backend, r in _put().items():
        share = r["put_8"]["requests_s"] / r["bare_8"]["requests_s"]
        values[backend] = (
            f"{share:.1%} ({r['put_8']['requests_s']:,.0f}/s of {r['bare_8']['requests_s']:,.0f})",
            share >= 0.25,
        )
    return _each(values)


def put_p99() -> tuple[str, bool] | None:
    values = {
        backend: (f"{r['put_32']['p99_ms']:.0f} ms", r["put_32"]["p99_ms"] < 150)
        for backend, r in _put().items()
    }
    return _each(values)


def two_processes() -> tuple[str, bool] | None:
    r = _put().get("postgresql")
    if not r or "put_8_two_processes" not in r:
        return None
    ratio = r["put_8_two_processes"]["requests_s"] / r["put_8"]["requests_s"]
    return f"{ratio:.2f}x (PUT, 8 connections)", ratio >= 1.6


def photos() -> tuple[str, bool] | None:
    found = load("photo_upload")
    if not found:
        return None
    rates = [r for r in found["rates"] if r["connections"] == 8]
    values = {r["mode"]: (f"{r['photos_s']:.0f}/s", r["photos_s"] >= 170) for r in rates}
    return _each(values)


def _progress(endpoint: str, clients: int) -> dict[tuple[str, int], list[dict[str, Any]]]:
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in load("progress_read") or []:
        if r["endpoint"] == endpoint and r["clients"] == clients:
            runs.setdefault((r["backend"], r["households"]), []).append(r)
    return runs


def _small(runs: dict[tuple[str, int], list[dict[str, Any]]], backend: str) -> int | None:
    sizes = sorted(h for b, h in runs if b == backend)
    return sizes[0] if sizes else None


def household_share() -> tuple[str, bool] | None:
    runs, bare = _progress("household progress", 8), _put()
    values = {}
    for backend in BACKENDS:
        small = _small(runs, backend)
        if small is None or backend not in bare:
            continue
        rate = statistics.median(r["requests_s"] for r in runs[backend, small])
        share = rate / bare[backend]["bare_8"]["requests_s"]
        values[backend] = (f"{share:.1%} ({rate:,.0f}/s, {small:,} households)", share >= 0.25)
    return _each(values)


def county_rate() -> tuple[str, bool] | None:
    runs = _progress("county progress", 8)
    values = {}
    for backend in BACKENDS:
        small = _small(runs, backend)
        if small is not None:
            rate = max(r["requests_s"] for r in runs[backend, small])
            values[backend] = (f"{rate:,.0f}/s ({small:,} households)", rate >= 500)
    return _each(values)


def county_large() -> tuple[str, bool] | None:
    runs = _progress("county progress", 8)
    values = {}
    for backend in BACKENDS:
        sizes = sorted(h for b, h in runs if b == backend)
        if len(sizes) < 2:
            continue
        small = min(r["p50_ms"] for r in runs[backend, sizes[0]])
        large = min(r["p50_ms"] for r in runs[backend, sizes[-1]])
        values[backend] = (
            f"{large:.0f} ms ({sizes[-1]:,}) vs {small:.0f} ms ({sizes[0]:,})",
            large <= 100 and large <= small * 1.2,
        )
    return _each(values)


def export_first_byte() -> tuple[str, bool] | None:
    values = {
        r["backend"]: (f"{r['first_byte']:.2f} s", r["first_byte"] <= 2.0)
        for r in load("export_households") or []
        if r["kind"] == "xlsx" and r["scope"] == "county"
    }
    return _each(values)


def end_of_day() -> tuple[str, bool] | None:
    found = load("phones")
    if not found:
        return None
    values = {}
    for backend, r in found.items():
        ok = (
            r["all_in"]
            and r["lost"] == 0
            and r["duplicated"] == 0
            and r["fast_p99_ms"] < 500
            and r["peak_rss_mb"] < 300
        )
        values[backend] = (
            f"{r['phones']:,} phones, all in: {'yes' if r['all_in'] else 'no'}, lost "
            f"{r['lost']}, fast p99 {r['fast_p99_ms']:.0f} ms, RSS {r['peak_rss_mb']:.0f} MB",
            bool(ok),
        )
    return _each(values)


ROWS = [
    Row(
        "batches of 100 new visits vs raw insert, 1 and 8 clients",
        "0.8–1.3 %",
        "≥ 50 %",
        batches,
    ),
    Row("one visit per PUT, 8 clients, vs bare endpoint", "~2 % (116–143/s)", "≥ 25 %", put_share),
    Row("p99 of PUT at 32 clients", "409–412 ms", "< 150 ms", put_p99),
    Row("200 KB JPEG photos, 8 clients", "49–56/s", "≥ 170/s", photos),
    Row("p99 of a PostgreSQL batch of 100 at 8 clients", "12–13 s", "< 1 s", batch_p99),
    Row("PostgreSQL writes, 2 API processes vs 1", "1x", "≥ 1.6x", two_processes),
    Row(
        "household progress, 8 clients, vs bare endpoint",
        "1.2–1.5 %",
        "≥ 25 %",
        household_share,
    ),
    Row("county progress, 8 clients", "24–36/s", "≥ 500/s", county_rate),
    Row(
        "county progress, 50,000 households, p50 at 8 readers",
        "5.6 s / 2.2 s",
        "≤ 100 ms, within 20 % of 5,000",
        county_large,
    ),
    Row("XLSX export first byte, 50,000 households", "21–32 s", "≤ 2 s", export_first_byte),
    Row(
        "end of day: simulated phones over slow links",
        "not measured",
        "all in, nothing lost, fast p99 < 500 ms, RSS < 300 MB",
        end_of_day,
    ),
]


def main() -> int:
    print("issue 15 targets (figures from bench/results/, written by the benchmarks' last runs)")
    print()
    print("| measure | before | now | target | met |")
    print("|---|---|---|---|---|")
    for row in ROWS:
        now = row.now()
        text, met = ("not run", "–") if now is None else (now[0], "yes" if now[1] else "no")
        print(f"| {row.measure} | {row.before} | {text} | {row.target} | {met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
