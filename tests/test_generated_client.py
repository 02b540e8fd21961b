"""A Python client generated from openapi/openapi.json (openapi-python-client) works: a county
admin registers an API client with it, and the client logs in with client_credentials, lists its
households page by page and reads a household's progress document.

The generator runs once per session into a temporary directory; the generated package is imported
from there and talks to the test's ASGI app through its own httpx client.
"""

from __future__ import annotations

import base64
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.builders import COUNTY_A, PASSWORD, World, make_household
from tests.test_openapi import PUBLISHED

PACKAGE = "fieldsync_client"
# The generator knows JSON, forms and application/octet-stream; the other binary bodies (photos,
# tus chunks, exports) are bytes all the same.
CONFIG = """\
post_hooks: []
content_type_overrides:
  application/offset+octet-stream: application/octet-stream
  image/*: application/octet-stream
  image/jpeg: application/octet-stream
  text/csv: application/octet-stream
  application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: application/octet-stream
"""


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The generated client's modules, by dotted name under the package."""
    root = tmp_path_factory.mktemp("generated")
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    generator = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(PUBLISHED),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
            "--config",
            str(root / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # Every operation is generated: the generator warns of each one it could not read.
    assert "WARNING" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(root))
    try:
        names = [
            "client",
            "models",
            "types",
            "api.auth.create_token",
            "api.clients.create_client",
            "api.households.list_households",
            "api.progress.get_household_progress",
        ]
        yield {name: importlib.import_module(f"{PACKAGE}.{name}") for name in names}
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[module]


def _client(generated: dict[str, ModuleType], app: Any, **headers: str) -> Any:
    """A generated `Client` whose requests go to the test's ASGI app."""
    client = generated["client"].Client(base_url="http://test", raise_on_unexpected_status=True)
    client.set_async_httpx_client(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
        )
    )
    return client


async def test_a_generated_client_logs_in_pages_through_households_and_reads_progress(
    generated: dict[str, ModuleType], app: Any, session: Any, world: World
) -> None:
    models, api = generated["models"], generated
    for n in range(3):  # five households in county A, pages of two
        await make_household(session, village="371522102201", head_name=f"户主{n}")

    # The county admin logs in (password flow) and registers a read-only client.
    anonymous = _client(generated, app)
    login = await api["api.auth.create_token"].asyncio(
        client=anonymous,
        body=models.BodyCreateToken(
            grant_type="password", username=world.users["admin_a"].username, password=PASSWORD
        ),
    )
    assert isinstance(login, models.TokenResponse), login
    admin = _client(generated, app, Authorization=f"Bearer {login.access_token}")
    registered = await api["api.clients.create_client"].asyncio(
        client=admin,
        body=models.ClientCreate(
            name="市级监测平台",
            region_code=COUNTY_A,
            scopes=[models.ClientScope.HOUSEHOLDSREAD, models.ClientScope.PROGRESSREAD],
        ),
    )
    assert isinstance(registered, models.ClientWithSecret), registered

    # The client logs in with its secret (HTTP Basic, RFC 6749 §2.3.1) ...
    basic = base64.b64encode(f"{registered.client_id}:{registered.client_secret}".encode())
    token = await api["api.auth.create_token"].asyncio(
        client=_client(generated, app, Authorization=f"Basic {basic.decode()}"),
        body=models.BodyCreateToken(grant_type="client_credentials"),
    )
    assert isinstance(token, models.TokenResponse), token
    assert set(token.scope.split()) == {"households:read", "progress:read"}
    reader = generated["client"].AuthenticatedClient(
        base_url="http://test", token=token.access_token, raise_on_unexpected_status=True
    )
    reader.set_async_httpx_client(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {token.access_token}"},
        )
    )

    # ... lists its households page by page ...
    seen: list[Any] = []
    cursor: Any = generated["types"].UNSET
    pages = 0
    while True:
        page = await api["api.households.list_households"].asyncio(
            client=reader, limit=2, cursor=cursor
        )
        assert isinstance(page, models.PageHouseholdPublic), page
        seen.extend(page.items)
        pages += 1
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert len({h.id for h in seen}) == len(seen) == 5  # county A's: a1, a2 and the three above
    # Without pii:read, ID numbers and phones are masked.
    assert all(h.pii_masked for h in seen)
    assert all("*" in m.id_number for h in seen for m in h.members if m.id_number)

    # ... and reads a household's progress document.
    a1 = next(h for h in seen if h.id == world.households["a1"].id)
    progress = await api["api.progress.get_household_progress"].asyncio(
        client=reader, household_id=a1.id
    )
    assert isinstance(progress, models.HouseholdProgress), progress
    assert progress.household_id == a1.id
    assert progress.exit_.eligible in (True, False)
