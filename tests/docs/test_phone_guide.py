"""docs/phone-sync.md is what a test run of its scenario gives: change the API and this fails.

`make docs` (FIELDSYNC_WRITE_DOCS=1) writes the file from the run instead of comparing.
"""

from __future__ import annotations

import os

import httpx

from tests.builders import World
from tests.docs.phone_guide import GUIDE, render, scenario


async def test_the_phone_guide_is_what_the_api_answers(
    client: httpx.AsyncClient, world: World
) -> None:
    text = render(await scenario(client, world))
    if os.environ.get("FIELDSYNC_WRITE_DOCS") == "1":
        GUIDE.write_text(text, encoding="utf-8")
    assert GUIDE.read_text(encoding="utf-8") == text, (
        "docs/phone-sync.md differs from what the API answers now: run `make docs`"
    )
