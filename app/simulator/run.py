"""A run: N phones at once against one server, progress while they work, a summary at the end."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import httpx

from app.simulator.link import LinkProfile
from app.simulator.phone import Phone, PhoneSpec, Plan
from app.simulator.summary import Summary

# A phone out in the villages: 2G/3G at the edge of a cell, one request in ten lost.
SLOW_LINK = LinkProfile(latency_ms=300, bandwidth_kbps=64, loss=0.1)


@dataclass(frozen=True)
class Config:
    phones: int
    users: Sequence[tuple[str, str]]  # (username, password): phone i logs in as users[i % len]
    plan: Plan = field(default_factory=lambda: Plan(today=date.today()))
    base_url: str = "http://127.0.0.1:8000"
    slow_link: LinkProfile = SLOW_LINK
    fast_share: float = 0.1  # phones on a perfect link: the control group of the latencies
    seed: int = 1
    ramp_seconds: float = 0.0  # phones come into signal spread over this long
    progress_seconds: float = 2.0


def usernames(prefix: str, count: int) -> list[str]:
    """The users a run of `count` phones logs in as when they are named by a prefix."""
    return [f"{prefix}{n}" for n in range(1, count + 1)]


def phone_specs(config: Config) -> list[PhoneSpec]:
    """Who each phone is and what link it has, from the seed."""
    if not config.users:
        raise ValueError("a run needs at least one user to log in as")
    fast_count = round(config.phones * config.fast_share)
    fast = set(random.Random(f"{config.seed}/fast").sample(range(config.phones), fast_count))
    specs = []
    for index in range(config.phones):
        username, password = config.users[index % len(config.users)]
        specs.append(
            PhoneSpec(
                index=index,
                username=username,
                password=password,
                device_id=f"sim-{config.seed}-{index:05d}",
                profile=LinkProfile() if index in fast else config.slow_link,
                seed=f"{config.seed}/{index}",
            )
        )
    return specs


def tcp_transports() -> Callable[[], httpx.AsyncBaseTransport]:
    """A connection pool of its own for each phone (one TLS context for all: making one is
    slow, and a thousand phones would make a thousand)."""
    context = ssl.create_default_context()
    return lambda: httpx.AsyncHTTPTransport(verify=context, retries=0)


async def simulate(
    config: Config,
    *,
    transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Summary:
    """Run the phones of `config` at once; `transport` makes each phone's connection to the
    server (default: TCP to `config.base_url`); `progress` gets a line every few seconds."""
    make_transport = transport or tcp_transports()
    phones = [
        Phone(spec, config.plan, base_url=config.base_url, transport=make_transport)
        for spec in phone_specs(config)
    ]
    starts = random.Random(f"{config.seed}/ramp")
    started = time.perf_counter()

    async def day(phone: Phone, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await phone.run()

    tasks = [
        asyncio.create_task(day(phone, starts.uniform(0, config.ramp_seconds))) for phone in phones
    ]
    reporter = asyncio.create_task(_report(phones, started, config.progress_seconds, progress))
    try:
        await asyncio.gather(*tasks)
    finally:
        reporter.cancel()
        for task in tasks:
            task.cancel()
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(_progress_line(phones, seconds))
    return Summary.of(phones, seconds)


def _progress_line(phones: Sequence[Phone], seconds: float) -> str:
    done = sum(p.done for p in phones)
    acknowledged = sum(p.acknowledged for p in phones)
    # Until a phone has downloaded its villages, its day's records are still to be made.
    records = sum(len(p.records) if p.records else p.plan.records for p in phones)
    retries = sum(p.stats.retries for p in phones)
    return (
        f"{seconds:7.1f} s  phones done {done}/{len(phones)}, records acknowledged "
        f"{acknowledged}/{records}, retries {retries}"
    )


async def _report(
    phones: Sequence[Phone],
    started: float,
    every: float,
    progress: Callable[[str], None] | None,
) -> None:
    if progress is None or every <= 0:
        return
    while True:
        await asyncio.sleep(every)
        progress(_progress_line(phones, time.perf_counter() - started))
