"""Benchmark: the server's memory while it exports 50,000 households (issue 6, acceptance 5).

For each backend, a fresh migrated database is filled with the generated county of
`bench/progress_read.py` (default 50,000 households, 20 visits and 4 income snapshots each;
20 towns of 10 villages) and `fieldsync serve` (one uvicorn worker) starts. A warm-up export of
one village loads the code paths; then each file is downloaded, for one town (a tenth of the
county) and for the whole county: GET /exports/households.csv and .xlsx as the county admin.

The server's VmRSS is sampled every 20 ms, and VmHWM (the kernel's own peak, sampling gaps
included) is reset before each download (/proc/<pid>/clear_refs), so it covers that download
alone. Constant memory means the peak does not grow with the rows: the county's 50,000 rows
take no more than the town's 5,000. Each file is then opened and its rows counted: the CSV with
the csv module, the XLSX with openpyxl (a spreadsheet library, read-only mode).

    make bench-export          # or: .venv/bin/python bench/export_households.py --households 5000
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openpyxl
from photo_upload import RssSampler, cpu_seconds, memory_kib, reset_peak, server_pid
from progress_read import COUNTY, generate, login
from results import save
from sync_ingest import POSTGRES_URL, _free_port, new_database, postgres_available, serve


def download(client: httpx.Client, kind: str, region: str, target: Path) -> dict[str, float]:
    """Stream one export to `target`; seconds to the first byte and in all, bytes."""
    started = time.perf_counter()
    first = None
    size = 0
    with (
        client.stream("GET", f"/api/v1/exports/households.{kind}", params={"region": region}) as r,
        target.open("wb") as out,
    ):
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"{kind} export of {region}: {r.status_code} {r.text[:500]}")
        for chunk in r.iter_bytes():
            if first is None:
                first = time.perf_counter() - started
            out.write(chunk)
            size += len(chunk)
    return {"seconds": time.perf_counter() - started, "first_byte": first or 0.0, "bytes": size}


def rows_in(kind: str, path: Path) -> int:
    """Data rows of the file, read the way a consumer would (header checked)."""
    if kind == "csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            if next(reader)[0] != "户编号":
                raise RuntimeError("the CSV does not start with its header")
            return sum(1 for _ in reader)
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = workbook["贫困户"].iter_rows(values_only=True)
        if next(rows)[0] != "户编号":
            raise RuntimeError("the XLSX does not start with its header")
        return sum(1 for _ in rows)
    finally:
        workbook.close()


def measure(
    client: httpx.Client, pid: int, sampler: RssSampler, kind: str, region: str, tmp: Path
) -> dict[str, Any]:
    target = tmp / f"export-{region}.{kind}"
    before = memory_kib(pid)["VmRSS"]
    reset_peak(pid)
    start = time.monotonic()
    cpu_before = cpu_seconds(pid)
    result = download(client, kind, region, target)
    result["cpu"] = cpu_seconds(pid) - cpu_before
    result["sampled_peak"] = sampler.peak(start, time.monotonic())
    result["hwm"] = memory_kib(pid)["VmHWM"]
    result["before"] = before
    result["rows"] = rows_in(kind, target)
    target.unlink()
    return result


def run_backend(
    backend: str, households: int, tmp: Path, postgres_url: str
) -> list[dict[str, Any]]:
    with ExitStack() as stack:
        url = stack.enter_context(new_database(backend, tmp, postgres_url))
        print(f"[{backend}] generating a county of {households:,} households …", flush=True)
        county = generate(url, households)
        print(f"[{backend}] generated in {county.seconds:.0f} s: {county.counts}", flush=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")},
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_DATA_DIR": str(tmp / f"data-{backend}"),
            "FIELDSYNC_PORT": str(_free_port()),
            "FIELDSYNC_LOG_LEVEL": "WARNING",
            "FIELDSYNC_ACCESS_TOKEN_MINUTES": "240",
            "FIELDSYNC_SECRET_KEY": "bench-signing-key-" + "k" * 40,
            "FIELDSYNC_PII_KEY": "bench-pii-key-" + "p" * 40,
        }
        base = stack.enter_context(serve(env, tmp / f"server-{backend}.log"))
        pid = server_pid(int(env["FIELDSYNC_PORT"]))
        sampler = RssSampler(pid)
        sampler.start()
        stack.callback(sampler.stop)
        headers = {"Authorization": f"Bearer {login(base)}"}
        client = stack.enter_context(httpx.Client(base_url=base, headers=headers, timeout=600))
        town, village = COUNTY[:6] + "001000", COUNTY[:6] + "001201"
        for kind in ("csv", "xlsx"):  # warm-up: every code path once
            measure(client, pid, sampler, kind, village, tmp)
        results = []
        for kind in ("csv", "xlsx"):
            for label, region in (("town", town), ("county", COUNTY)):
                r = measure(client, pid, sampler, kind, region, tmp)
                r.update(backend=backend, kind=kind, scope=label, region=region)
                print(f"  {_line(r)}", flush=True)
                results.append(r)
        return results


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['kind']:4} {r['scope']:6} {r['rows']:>7,} rows  {r['bytes'] / 1e6:7.1f} MB  "
        f"{r['seconds']:6.1f} s (first byte {r['first_byte']:5.2f} s, server CPU "
        f"{r['cpu']:5.1f} s)  RSS before {_mib(r['before'])}, peak sampled "
        f"{_mib(r['sampled_peak'])}, VmHWM {_mib(r['hwm'])} (+{_mib(r['hwm'] - r['before'])})"
    )


def summary(results: list[dict[str, Any]]) -> str:
    lines = [
        "",
        "| Backend | File | Region | Rows | Size | Time | First byte | Server RSS before "
        "| Peak (VmHWM) | Growth |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['kind']} | {r['scope']} | {r['rows']:,} | "
            f"{r['bytes'] / 1e6:.1f} MB | {r['seconds']:.1f} s | {r['first_byte']:.2f} s | "
            f"{_mib(r['before'])} | {_mib(r['hwm'])} | +{_mib(r['hwm'] - r['before'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=50_000)
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="both: PostgreSQL too when it is reachable",
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if args.backend == "both" and not postgres_available(args.postgres_url):
        print("PostgreSQL is not reachable: SQLite only", flush=True)
        backends = ["sqlite"]
    results = []
    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-export-") as tmp:
        for backend in backends:
            results += run_backend(backend, args.households, Path(tmp), args.postgres_url)
    print(summary(results))
    save("export_households", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
