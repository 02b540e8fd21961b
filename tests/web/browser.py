"""Debian's chromium for the browser tests: found on the machine, never downloaded.

Playwright drives it through `executable_path`. Without a chromium the browser tests are
skipped with the reason printed, except in CI (CI set), where a skip would hide a failure:
there they fail. `.ci/run` installs chromium when it is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CANDIDATES = ("chromium", "chromium-browser")
# As Debian's chromium runs headless on a closed network: no background calls to Google.
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(os.environ.get("FIELDSYNC_SCREENSHOT_DIR", "build/screenshots"))


def chromium_path() -> str | None:
    given = os.environ.get("FIELDSYNC_CHROMIUM")
    if given:
        return given
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        reason = "no chromium found (apt install chromium, or set FIELDSYNC_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    return path


@contextmanager
def launched() -> Iterator[Any]:
    """A headless Debian chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watch:
    """What a page did that it must not: requests to other hosts, script errors, CSP reports."""

    def __init__(self, page: Any, base: str) -> None:
        self.host = urlsplit(base).netloc
        self.foreign: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )

    def _request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.netloc != self.host:
            self.foreign.append(request.url)

    def assert_clean(self) -> None:
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"
        assert self.errors == [], f"script errors or CSP violations: {self.errors}"

    def assert_foreign_blocked(self) -> None:
        """The documentation pages: ReDoc asks for its logo from its CDN, and the docs' policy
        refuses it before anything leaves the browser (Chromium reports each refusal)."""
        blocked = [e for e in self.errors if "Content Security Policy" in e]
        for url in self.foreign:
            assert any(url in message for message in blocked), f"not blocked by CSP: {url}"
        assert len(blocked) == len(self.errors), f"script errors: {self.errors}"
        self.foreign.clear()
        self.errors.clear()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
