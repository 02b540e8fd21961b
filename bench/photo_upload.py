"""Benchmark: the server's memory while a 50 MB photo arrives, and 200 KB photos per second.

One fresh SQLite database with the seed of `bench/sync_ingest.py` (one officer, 90 households),
local photo storage, `fieldsync serve` (one uvicorn worker) warmed up by one PUT and one tus
upload of a small photo. Every photo is built before the clock starts: JPEGs of random noise,
which do not compress, so their size is their pixel count.

Memory: a ~50 MB JPEG (under the 50-megapixel limit) goes up by tus, first in one PATCH, then
in 1 MiB PATCHes as a phone sends it; the client streams it from disk. The server's VmRSS is
sampled every 20 ms, split into the transfer (until the last byte is sent) and the processing
that follows (join the parts, hash, decode at reduced scale, thumbnail, store); VmHWM, the
kernel's own peak, is reset before each upload (/proc/<pid>/clear_refs) so it covers that
upload alone, sampling gaps included.

Throughput: ~200 KB photos from 1 and 8 clients driven by wrk (a Python client tops out near
600 requests/s on its own on 2 cores) through `bench/wrk_photo_upload.lua`: PUT
/photos/{sha256} (one request per photo) and tus (POST, then one PATCH of the whole photo).
Each photo is one base JPEG followed by an ASCII suffix of its own after the JPEG's end (the
decoder stops there), so every upload is a distinct sha256 that is stored for real.

    make bench-photos               # or: .venv/bin/python bench/photo_upload.py --quick
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from results import save
from sync_ingest import (
    OFFICER,
    PASSWORD,
    POSTGRES_URL,
    _free_port,
    _household_ids,
    new_database,
    prepare,
    serve,
)

LUA_SCRIPT = Path(__file__).with_name("wrk_photo_upload.lua")
MB = 1_000_000
MIB = 1 << 20
CHUNK = MIB  # the client's read size and the phone-style PATCH size
LARGE_TARGET, LARGE_RANGE = 51_500_000, (48_000_000, 55_000_000)
MAX_PIXELS = 50_000_000  # the server's default FIELDSYNC_PHOTO_MAX_PIXELS
SMALL_TARGET = 200_000
SAMPLE_SECONDS = 0.020
TUS = {"Tus-Resumable": "1.0.0"}
SCENARIOS = (("put", 1), ("put", 8), ("tus", 1), ("tus", 8))


# --- photos, built before the clock ---------------------------------------------------------


def _noise_jpeg(width: int, height: int, seed: int) -> bytes:
    pixels = random.Random(seed).randbytes(width * height * 3)
    out = BytesIO()
    # 4:4:4 at quality 95: ~2.5 bytes per pixel of noise, so 50 MB stays far under 50 MP.
    Image.frombytes("RGB", (width, height), pixels).save(out, "JPEG", quality=95, subsampling=0)
    return out.getvalue()


def _bytes_per_pixel() -> float:
    return len(_noise_jpeg(512, 512, seed=0)) / (512 * 512)


def build_large_photo(path: Path) -> tuple[int, int]:
    """A noise JPEG of 48–55 MB at 4:3 under the pixel limit; its (width, height)."""
    pixels = LARGE_TARGET / _bytes_per_pixel()
    width = round(math.sqrt(pixels * 4 / 3) / 16) * 16
    height = round(width * 3 / 4 / 16) * 16
    path.write_bytes(_noise_jpeg(width, height, seed=50))
    size = path.stat().st_size
    if not LARGE_RANGE[0] <= size <= LARGE_RANGE[1] or width * height >= MAX_PIXELS:
        raise RuntimeError(f"the large photo came out {width}x{height}, {size} bytes")
    return width, height


def build_small_photo() -> tuple[bytes, int]:
    """A noise JPEG of about 200 KB, square; its bytes and side."""
    side = round(math.sqrt(SMALL_TARGET / _bytes_per_pixel()) / 4) * 4
    return _noise_jpeg(side, side, seed=200), side


def write_photo_list(path: Path, base: bytes, scenario: str, count: int) -> int:
    """`count` photos `base + suffix` for the wrk script (see its header); the body size."""
    households = _household_ids()
    prefix = hashlib.sha256(base)  # the base is hashed once; each photo adds its suffix
    with path.open("w", encoding="ascii") as out:
        for n in range(count):
            suffix = _suffix(scenario, n)
            digest = prefix.copy()
            digest.update(suffix.encode())
            sha256, household = digest.hexdigest(), households[n % len(households)]
            metadata = _metadata(sha256, household)
            out.write(f"{sha256}\t{suffix}\t{household}\t{metadata}\n")
    return len(base) + len(_suffix(scenario, 0))  # zero-padded: all of one length


def _suffix(scenario: str, n: int) -> str:
    return f"fieldsync-bench-{scenario}-{n:06d}"


def _metadata(sha256: str, household: object) -> str:
    return ",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}"
        for key, value in (("sha256", sha256), ("household_id", household))
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# --- the server process -------------------------------------------------------------------


def server_pid(port: int) -> int:
    """The child of this process listening on `port`: the uvicorn server `serve()` started
    (`fieldsync serve` with one worker and no reload serves in its own process)."""
    wanted = f"{port:04X}"
    with open("/proc/net/tcp") as table:
        inodes = {
            fields[9]
            for fields in (line.split() for line in list(table)[1:])
            if fields[1].endswith(f":{wanted}") and fields[3] == "0A"  # LISTEN
        }
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != os.getpid():
                continue
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return int(proc.name)
    raise RuntimeError(f"no child process listens on port {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> None:
    """VmHWM := VmRSS now (Linux 4.0+), so that the next VmHWM covers what follows alone."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class RssSampler(threading.Thread):
    """VmRSS of `pid` every 20 ms, as (monotonic seconds, KiB), until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.samples.append((time.monotonic(), memory_kib(self.pid)["VmRSS"]))
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak(self, start: float, end: float) -> int:
        return max((kib for at, kib in self.samples if start <= at <= end), default=0)


# --- HTTP -----------------------------------------------------------------------------------


def login(base: str) -> str:
    form = {"grant_type": "password", "username": OFFICER, "password": PASSWORD}
    response = httpx.post(f"{base}/api/v1/auth/token", data=form, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: expected {status}, got "
            f"{response.status_code} {response.text[:500]}"
        )
    return response


def _file_body(path: Path, start: int, end: int, sent: list[float]) -> Iterator[bytes]:
    """The bytes [start, end) of `path` in 1 MiB reads; notes when the last one was sent."""
    with path.open("rb") as file:
        file.seek(start)
        while start < end:
            block = file.read(min(CHUNK, end - start))
            start += len(block)
            yield block
    sent.append(time.monotonic())


def tus_upload(
    client: httpx.Client, path: Path, sha256: str, household: object, *, patch_size: int
) -> list[float]:
    """Upload `path` by tus in PATCHes of `patch_size`; when the last byte went out."""
    size = path.stat().st_size
    created = client.post(
        "/api/v1/uploads",
        headers={
            **TUS,
            "Upload-Length": str(size),
            "Upload-Metadata": _metadata(sha256, household),
        },
    )
    location = _expect(created, 201).headers["Location"]
    sent: list[float] = []
    for start in range(0, size, patch_size):
        end = min(start + patch_size, size)
        headers = {
            **TUS,
            "Upload-Offset": str(start),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(end - start),  # streamed with a length, not chunked
        }
        answer = client.patch(location, headers=headers, content=_file_body(path, start, end, sent))
        if _expect(answer, 204).headers["Upload-Offset"] != str(end):
            raise RuntimeError(f"PATCH at {start}: offset {answer.headers['Upload-Offset']}")
    return sent


def check_stored(client: httpx.Client, sha256: str, size: int, dimensions: tuple[int, int]) -> None:
    photo = _expect(client.get(f"/api/v1/photos/{sha256}"), 200).json()
    if (photo["size_bytes"], photo["width"], photo["height"]) != (size, *dimensions):
        raise RuntimeError(f"photo {sha256} stored as {photo}")


def warm_up(client: httpx.Client, base: bytes, side: int, tmp: Path) -> None:
    """One PUT and one tus upload of the small photo, each with a suffix after the JPEG's end:
    proves the server takes such files (the wrk runs rely on it) and warms both paths up."""
    household = _household_ids()[0]
    body = base + b"fieldsync-bench-warm-up-put"
    sha256 = hashlib.sha256(body).hexdigest()
    put = client.put(
        f"/api/v1/photos/{sha256}",
        params={"household_id": str(household)},
        headers={"Content-Type": "image/jpeg"},
        content=body,
    )
    if put.status_code != 201 or (put.json()["width"], put.json()["height"]) != (side, side):
        raise RuntimeError(
            "the server refused a JPEG with bytes after its end, which every wrk photo has: "
            f"{put.status_code} {put.text[:500]}"
        )
    path = tmp / "warm-up.jpg"
    path.write_bytes(base + b"fieldsync-bench-warm-up-tus")
    sha256 = _file_sha256(path)
    tus_upload(client, path, sha256, household, patch_size=path.stat().st_size)
    check_stored(client, sha256, path.stat().st_size, (side, side))


# --- memory ---------------------------------------------------------------------------------


@dataclass
class MemoryRun:
    label: str
    size: int
    patches: int
    seconds: float
    transfer_seconds: float
    baseline_kib: int
    transfer_peak_kib: int
    processing_peak_kib: int
    hwm_kib: int  # VmHWM after the upload, reset before it: this upload's peak
    after_kib: int


def measure_upload(
    client: httpx.Client,
    pid: int,
    path: Path,
    dimensions: tuple[int, int],
    *,
    label: str,
    patch_size: int,
) -> MemoryRun:
    size, sha256 = path.stat().st_size, _file_sha256(path)
    os.sync()  # earlier writes flushed now, not during this upload
    before = memory_kib(pid)
    reset_peak(pid)
    sampler = RssSampler(pid)
    sampler.start()
    time.sleep(5 * SAMPLE_SECONDS)  # a few samples of the idle baseline
    started = time.monotonic()
    try:
        sent = tus_upload(client, path, sha256, _household_ids()[1], patch_size=patch_size)
        finished = time.monotonic()
        time.sleep(5 * SAMPLE_SECONDS)
    finally:
        sampler.stop()
    after = memory_kib(pid)
    check_stored(client, sha256, size, dimensions)
    return MemoryRun(
        label=label,
        size=size,
        patches=math.ceil(size / patch_size),
        seconds=finished - started,
        transfer_seconds=sent[-1] - started,
        baseline_kib=before["VmRSS"],
        transfer_peak_kib=sampler.peak(started, sent[-1]),
        processing_peak_kib=sampler.peak(sent[-1], finished),
        hwm_kib=after["VmHWM"],
        after_kib=after["VmRSS"],
    )


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def _growth(kib: int, baseline: int) -> str:
    return f"{(kib - baseline) / 1024:+.1f} MiB"


def print_memory(run: MemoryRun) -> None:
    b = run.baseline_kib
    print(
        f"  {run.label}: {run.size / MB:.1f} MB in {run.patches} PATCH(es), "
        f"{run.seconds:.2f} s ({run.size / MB / run.seconds:.0f} MB/s; transfer "
        f"{run.transfer_seconds:.2f} s, processing {run.seconds - run.transfer_seconds:.2f} s)\n"
        f"    RSS baseline {_mib(b)}; sampled peak during transfer {_mib(run.transfer_peak_kib)}"
        f" ({_growth(run.transfer_peak_kib, b)}), during processing "
        f"{_mib(run.processing_peak_kib)} ({_growth(run.processing_peak_kib, b)})\n"
        f"    VmHWM of this upload {_mib(run.hwm_kib)} ({_growth(run.hwm_kib, b)}); "
        f"RSS after {_mib(run.after_kib)} "
        f"({_growth(run.after_kib, b)})"
    )


# --- throughput (wrk) -----------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise RuntimeError(f"wrk printed a latency of {value!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def _wrk_requests_s(output: str) -> float:
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{output}")
    return float(match[1])


def run_wrk(
    url: str,
    token: str,
    pid: int,
    *,
    mode: str,
    connections: int,
    duration: int,
    base_path: Path,
    list_path: Path,
    body_size: int,
) -> dict[str, Any]:
    threads = 1 if connections == 1 else 2
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        mode,
        str(base_path),
        str(list_path),
        token,
        str(threads),
    ]
    os.sync()  # earlier writes flushed now, not during this run
    rss_before = memory_kib(pid)["VmRSS"]
    reset_peak(pid)
    cpu_before = cpu_seconds(pid)
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    cpu = cpu_seconds(pid) - cpu_before
    output = result.stdout + result.stderr
    # The `bench <name> <value>` lines the script's done() prints.
    ours = dict(line.split(" ", 2)[1:] for line in output.splitlines() if line.startswith("bench "))
    statuses = dict(item.split("=") for item in filter(None, ours.get("statuses", "").split(",")))
    problems = [f"{n} answers {status}" for status, n in statuses.items() if status[0] != "2"]
    if "Non-2xx or 3xx responses" in output:
        problems.append("wrk counted non-2xx answers")
    if "Socket errors" in output:
        problems.append("socket errors")
    if ours.get("exhausted") != "false":
        problems.append("ran out of distinct photos: raise --photos")
    if int(ours.get("photos", 0)) == 0:
        problems.append("no photo finished")
    if result.returncode != 0 or problems:
        raise RuntimeError(f"wrk {mode} -c{connections}: {'; '.join(problems)}\n{output}")
    seconds, photos = float(ours["seconds"]), int(ours["photos"])
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    return {
        "mode": mode,
        "connections": connections,
        "threads": threads,
        "photos": photos,
        "photos_s": photos / seconds,
        "mb_s": photos * body_size / MB / seconds,
        "p50_ms": float(ours["p50_ms"]),
        "p99_ms": float(ours["p99_ms"]),
        "requests_s": _wrk_requests_s(output),
        "request_p50_ms": _wrk_ms(latency["50"]),
        "request_p99_ms": _wrk_ms(latency["99"]),
        "statuses": statuses,
        "rss_before_kib": rss_before,
        "hwm_kib": memory_kib(pid)["VmHWM"],
        "cpu_ms": cpu * 1000 / photos,
        "cpu_share": cpu / seconds,
    }


_TITLES = {"put": "PUT /photos/{sha256}", "tus": "tus POST + PATCH"}


def print_throughput(r: dict[str, Any]) -> None:
    print(
        f"  {_TITLES[r['mode']]:<21} -c{r['connections']} -t{r['threads']}: "
        f"{r['photos']} photos, {r['photos_s']:.1f} photos/s, {r['mb_s']:.1f} MB/s, "
        f"photo p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms; wrk: "
        f"{r['requests_s']:.1f} req/s, request p50 {r['request_p50_ms']:.1f} ms "
        f"p99 {r['request_p99_ms']:.1f} ms; statuses {r['statuses']}; server: "
        f"{r['cpu_ms']:.1f} ms CPU per photo ({r['cpu_share']:.0%} of a core), "
        f"VmHWM {_mib(r['hwm_kib'])} (RSS before {_mib(r['rss_before_kib'])})"
    )


# --- the run --------------------------------------------------------------------------------


def summary(memory: list[MemoryRun], rates: list[dict[str, Any]], small: int) -> str:
    lines = [
        "| 50 MB tus upload | size | PATCHes | wall s | MB/s | RSS baseline "
        "| peak in transfer | peak in processing | VmHWM of the upload | RSS after |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in memory:
        b = m.baseline_kib
        lines.append(
            f"| {m.label} | {m.size / MB:.1f} MB | {m.patches} | {m.seconds:.2f} "
            f"| {m.size / MB / m.seconds:.0f} | {_mib(b)} "
            f"| {_growth(m.transfer_peak_kib, b)} | {_growth(m.processing_peak_kib, b)} "
            f"| {_growth(m.hwm_kib, b)} | {_growth(m.after_kib, b)} |"
        )
    lines += [
        "",
        f"| {small / 1000:.0f} KB photos | clients | photos/s | MB/s | photo p50 | photo p99 "
        "| wrk req/s | non-2xx | server CPU/photo | server VmHWM |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rates:
        bad = sum(int(count) for status, count in r["statuses"].items() if status[0] != "2")
        lines.append(
            f"| {_TITLES[r['mode']]} | {r['connections']} | {r['photos_s']:.1f} "
            f"| {r['mb_s']:.1f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
            f"| {r['requests_s']:.1f} | {bad} | {r['cpu_ms']:.1f} ms ({r['cpu_share']:.0%}) "
            f"| {_mib(r['hwm_kib'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs: a smoke test")
    parser.add_argument("--photos", type=int, default=20_000, help="distinct photos per wrk run")
    args = parser.parse_args()
    duration = args.duration or (3 if args.quick else 10)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ.update(FIELDSYNC_DATA_DIR=str(tmp / "data"), FIELDSYNC_LOG_LEVEL="WARNING")
        large = tmp / "large.jpg"
        dimensions = build_large_photo(large)
        large_again = tmp / "large-2.jpg"  # the same picture, another sha256
        shutil.copyfile(large, large_again)
        with large_again.open("ab") as file:
            file.write(b"fieldsync-bench-large-2")
        small, side = build_small_photo()
        small_path = tmp / "small.jpg"
        small_path.write_bytes(small)
        lists = {}
        for mode, connections in SCENARIOS:
            path = tmp / f"photos-{mode}-c{connections}.tsv"
            lists[mode, connections] = (
                path,
                write_photo_list(path, small, f"{mode}-c{connections}", args.photos),
            )
        print(
            f"fieldsync photo upload benchmark: SQLite, local storage, 1 server process "
            f"(uvicorn, 1 worker); large photo {dimensions[0]}x{dimensions[1]} "
            f"({dimensions[0] * dimensions[1] / 1e6:.1f} MP), {large.stat().st_size / MB:.1f} MB;"
            f" small photo {side}x{side}, {len(small) / 1000:.1f} KB; MB = 10^6 bytes"
        )

        with new_database("sqlite", tmp, POSTGRES_URL) as url:
            prepare(url)
            port = _free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")},
                "FIELDSYNC_DATABASE_URL": url,
                "FIELDSYNC_DATA_DIR": str(tmp / "data-server"),
                "FIELDSYNC_PORT": str(port),
                "FIELDSYNC_LOG_LEVEL": "WARNING",
                "FIELDSYNC_STORAGE_BACKEND": "local",
                "FIELDSYNC_PHOTO_MAX_PIXELS": str(MAX_PIXELS),
                "FIELDSYNC_SECRET_KEY": "bench-signing-key-" + "k" * 40,
                "FIELDSYNC_PII_KEY": "bench-pii-key-" + "p" * 40,
            }
            with serve(env, tmp / "server.log") as base:
                pid = server_pid(port)
                token = login(base)
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
                    warm_up(client, small, side, tmp)
                    status = memory_kib(pid)
                    print(
                        f"memory of the server (pid {pid}), RSS sampled every 20 ms; after "
                        f"start-up, login and warm-up: RSS {_mib(status['VmRSS'])}, VmHWM "
                        f"{_mib(status['VmHWM'])} (its peak so far, reset before each upload)"
                    )
                    memory = []
                    for label, path, patch_size in (
                        ("one PATCH", large, large.stat().st_size),
                        ("1 MiB PATCHes", large_again, CHUNK),
                    ):
                        run = measure_upload(
                            client, pid, path, dimensions, label=label, patch_size=patch_size
                        )
                        print_memory(run)
                        memory.append(run)
                print(f"throughput, wrk -d{duration}s, {args.photos} distinct photos per run:")
                rates = []
                for mode, connections in SCENARIOS:
                    list_path, body_size = lists[mode, connections]
                    rate = run_wrk(
                        base,
                        token,
                        pid,
                        mode=mode,
                        connections=connections,
                        duration=duration,
                        base_path=small_path,
                        list_path=list_path,
                        body_size=body_size,
                    )
                    print_throughput(rate)
                    rates.append(rate)
        print()
        print(summary(memory, rates, len(small)))
    save("photo_upload", {"memory": memory, "rates": rates})
    return 0


if __name__ == "__main__":
    sys.exit(main())
