"""Rate limits: 429 problem documents with Retry-After, per caller, per address and per login.

In-process with the memory store; `test_rate_limit_shared.py` runs two servers on one Redis.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from limits.errors import StorageError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.ratelimit import RateLimits
from app.core.security import ALGORITHM
from app.main import create_app
from app.users.models import Role
from tests.assertions import problem
from tests.builders import COUNTY_A, ID_HEAD_A1, PASSWORD, World
from tests.sync.server_helpers import free_port

TOKEN_URL = "/api/v1/auth/token"
# A path no route serves: counted all the same and answered at once, without the database (for
# concurrent requests, and per-second windows that a slow machine must not see move on).
NOWHERE = "/api/v1/no-such-thing"


@pytest.fixture(autouse=True)
async def committed_world(world: World, session: AsyncSession) -> World:
    """The world committed to the test's outer transaction: a 401 on the way must not roll it
    back (see tests/auth/test_jwt_attacks.py)."""
    await session.commit()
    return world


def limit(app: FastAPI, **values: Any) -> RateLimits:
    """Give the app rate limits of these settings (`client="3/minute"` …), counted afresh."""
    settings = get_settings().model_copy(
        update={f"rate_limit_{name}": value for name, value in values.items()}
    )
    limits = RateLimits(settings, client_role=Role.api_client.value)
    app.state.rate_limits = limits
    return limits


def client_token(account: uuid.UUID | None = None) -> str:
    """An access token as client_credentials issues it, for a client's service `account`; one
    that does not exist (its requests are counted, then the route answers 401)."""
    settings = get_settings()
    now = datetime.now(UTC)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(account or uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "role": Role.api_client.value,
        "scope": "households:read",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    return str(jwt.encode(claims, settings.signing_key, algorithm=ALGORITHM))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_rate_limited(response: httpx.Response, *, window: int, policy: str) -> int:
    """A 429 problem document with a sensible Retry-After (seconds, within the window)."""
    body = problem(response, 429, "rate_limited")
    assert body["type"] == "https://fieldsync.example/problems/rate-limited"
    assert body["title"] == "Too many requests"
    assert body["retryable"] is True
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert body["detail"] == f"too many requests: retry in {retry_after} s"
    assert response.headers["ratelimit"] == f'"{policy}";r=0;t={retry_after}'
    return retry_after


def login_form(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


# --- API clients and users --------------------------------------------------------------------


async def test_a_client_over_its_limit_gets_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    limit(app, client="3/minute")
    headers = bearer(client_token())

    for remaining in (2, 1, 0):
        response = await client.get("/api/v1/households", headers=headers)
        # Counted before the route runs: this made-up client then gets its 401 there.
        assert response.status_code != 429
        assert response.headers["ratelimit-policy"] == '"client";q=3;w=60'
        assert response.headers["ratelimit"].startswith(f'"client";r={remaining};t=')

    refused = await client.get("/api/v1/households", headers=headers)
    retry_after = assert_rate_limited(refused, window=60, policy="client")
    assert retry_after >= 55  # the first of the three requests was just now
    assert refused.headers["ratelimit-policy"] == '"client";q=3;w=60'
    # Like every answer: a request id, and private to the caller.
    assert refused.headers["x-request-id"]
    assert refused.headers["cache-control"] == "private, no-cache"


async def register_client(client: httpx.AsyncClient, world: World) -> tuple[str, str]:
    """A county admin registers an API client: its client_id and secret."""
    response = await client.post(
        "/api/v1/clients",
        json={"name": "城市看板", "region_code": COUNTY_A, "scopes": ["households:read"]},
        headers=world.headers("admin_a"),
    )
    assert response.status_code == 201, response.text
    return response.json()["client_id"], response.json()["client_secret"]


async def test_a_registered_client_is_limited_across_its_tokens(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    limit(app, client="4/minute")
    client_id, secret = await register_client(client, world)
    form = {"grant_type": "client_credentials"}
    tokens = []
    for issued in (
        await client.post(TOKEN_URL, data=form, auth=(client_id, secret)),  # HTTP Basic
        await client.post(
            TOKEN_URL, data={**form, "client_id": client_id, "client_secret": secret}
        ),
    ):
        assert issued.status_code == 200, issued.text
        tokens.append(issued.json()["access_token"])

    for token in tokens * 2:
        listing = await client.get("/api/v1/households", headers=bearer(token))
        assert listing.status_code == 200, listing.text
    assert_rate_limited(
        await client.get("/api/v1/households", headers=bearer(tokens[0])),
        window=60,
        policy="client",
    )
    # The admin who registered it is another caller, and users are not limited by default.
    assert (await client.get("/api/v1/households", headers=world.headers("admin_a"))).is_success


async def test_callers_are_counted_apart(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    limit(app, user="2/minute", client="2/minute")
    account = uuid.uuid4()
    one, other = client_token(account), client_token()
    for _ in range(2):
        assert (await client.get("/api/v1/me", headers=world.headers("officer_a1"))).is_success
        assert (await client.get("/api/v1/households", headers=bearer(one))).status_code != 429

    mine = await client.get("/api/v1/me", headers=world.headers("officer_a1"))
    assert_rate_limited(mine, window=60, policy="user")
    assert_rate_limited(
        await client.get("/api/v1/households", headers=bearer(one)), window=60, policy="client"
    )

    # Another user, another client, and another token of the same client each count alone
    # (a client is counted by its service account, however many tokens it holds).
    assert (await client.get("/api/v1/me", headers=world.headers("officer_a2"))).is_success
    assert (await client.get("/api/v1/households", headers=bearer(other))).status_code != 429
    again = await client.get("/api/v1/households", headers=bearer(client_token(account)))
    assert again.status_code == 429


async def test_limits_hold_a_burst_of_concurrent_requests(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    limit(app, user="5/minute")
    headers = world.headers("officer_a1")
    # Answered without the database: the test's one session cannot serve concurrent requests.
    responses = await asyncio.gather(*(client.get(NOWHERE, headers=headers) for _ in range(12)))
    assert sorted(r.status_code for r in responses) == [404] * 5 + [429] * 7


async def test_the_window_moves_on(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    limit(app, user="2/second")
    headers = world.headers("officer_a1")
    statuses = [(await client.get(NOWHERE, headers=headers)).status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    refused = await client.get(NOWHERE, headers=headers)
    assert refused.headers["retry-after"] == "1"
    await asyncio.sleep(1.1)
    assert (await client.get(NOWHERE, headers=headers)).status_code == 404


async def test_several_limits_of_one_kind(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    limit(app, user="2/second;3/minute")
    headers = world.headers("officer_a1")
    first = await client.get(NOWHERE, headers=headers)
    assert first.headers["ratelimit-policy"] == '"user-1s";q=2;w=1, "user-60s";q=3;w=60'
    assert first.headers["ratelimit"].startswith('"user-1s";r=1;t=')
    assert (await client.get(NOWHERE, headers=headers)).status_code == 404
    assert_rate_limited(await client.get(NOWHERE, headers=headers), window=1, policy="user-1s")
    await asyncio.sleep(1.1)
    assert (await client.get(NOWHERE, headers=headers)).status_code == 404
    assert_rate_limited(await client.get(NOWHERE, headers=headers), window=60, policy="user-60s")


async def test_users_are_not_limited_by_default(client: httpx.AsyncClient, world: World) -> None:
    """Phones catching up after days offline send bursts: only clients and logins are limited
    unless FIELDSYNC_RATE_LIMIT_USER is set."""
    assert get_settings().rate_limit_user == ""
    headers = world.headers("officer_a1")
    for _ in range(30):
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status_code == 200
        assert "ratelimit" not in response.headers


async def test_invalid_tokens_and_anonymous_requests_pass_to_their_401(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    limit(app, user="1/minute", client="1/minute")
    forged = client_token().rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    for headers in (bearer("not-a-token"), bearer(forged), {}):
        for _ in range(3):
            response = await client.get("/api/v1/households", headers=headers)
            problem(response, 401, "not_authenticated")
    # None of them counted against a real user.
    assert (await client.get("/api/v1/me", headers=world.headers("officer_a1"))).is_success


async def test_disabled_limits_count_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    limit(app, enabled=False, client="1/minute", token_ip="1/minute")
    headers = bearer(client_token())
    for _ in range(3):
        response = await client.get("/api/v1/households", headers=headers)
        assert response.status_code == 401 and "ratelimit" not in response.headers
        assert (await client.post(TOKEN_URL, data={})).status_code == 400


async def test_health_and_documents_are_not_limited(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    limit(app, client="1/minute")
    headers = bearer(client_token())
    for _ in range(3):
        assert (await client.get("/healthz", headers=headers)).status_code == 200
        assert (await client.get("/openapi.json", headers=headers)).status_code == 200


async def test_preflights_are_not_limited(app: FastAPI, client: httpx.AsyncClient) -> None:
    limit(app, client="1/minute")
    headers = {
        **bearer(client_token()),
        "Origin": "https://dashboard.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization",
    }
    for _ in range(3):
        assert (await client.options("/api/v1/households", headers=headers)).status_code == 200


async def test_a_429_carries_cors_headers(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A browser dashboard must be able to read the 429 and its Retry-After."""
    limit(app, client="1/minute")
    headers = {**bearer(client_token()), "Origin": "https://dashboard.example"}
    await client.get("/api/v1/households", headers=headers)
    refused = await client.get("/api/v1/households", headers=headers)
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == "*"
    exposed = refused.headers["access-control-expose-headers"].lower()
    assert {"retry-after", "ratelimit", "ratelimit-policy"} <= set(exposed.split(", "))


# --- the token endpoint -----------------------------------------------------------------------


def from_address(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_token_requests_are_limited_per_address(app: FastAPI, world: World) -> None:
    limit(app, token_ip="3/minute", login="100/minute")
    username = world.users["officer_a1"].username
    async with from_address(app, "203.0.113.7") as client:
        for _ in range(3):
            wrong = await client.post(TOKEN_URL, data=login_form(username, "wrong"))
            assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
            assert wrong.headers["ratelimit-policy"] == '"ip";q=3;w=60, "login";q=100;w=60'
        # Any username, any grant, even the right password: this address has had its turn.
        for form in (login_form(username), login_form("someone-else"), {"grant_type": "x"}):
            assert_rate_limited(await client.post(TOKEN_URL, data=form), window=60, policy="ip")
    async with from_address(app, "198.51.100.20") as elsewhere:
        response = await elsewhere.post(TOKEN_URL, data=login_form(username))
        assert response.status_code == 200, response.text
        assert response.json()["access_token"]


async def test_logins_are_limited_per_username(app: FastAPI, world: World) -> None:
    """Password guessing against one account is slowed however many addresses it comes from."""
    limit(app, token_ip="100/minute", login="2/minute")
    target = world.users["officer_a1"].username
    for host in ("203.0.113.1", "203.0.113.2"):
        async with from_address(app, host) as client:
            wrong = await client.post(TOKEN_URL, data=login_form(target, "guess"))
            assert wrong.status_code == 400
    async with from_address(app, "203.0.113.3") as client:
        # Form-encoded or multipart, the username is the same.
        for files in (None, {"unused": ("x.txt", b"x")}):
            refused = await client.post(TOKEN_URL, data=login_form(target), files=files)
            assert_rate_limited(refused, window=60, policy="login")
        # Another account from the same address: the form reaches the route whole.
        other = await client.post(TOKEN_URL, data=login_form(world.users["admin_a"].username))
        assert other.status_code == 200, other.text
        assert other.json()["scope"]


async def test_client_credentials_are_limited_per_client_id(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    limit(app, token_ip="100/minute", login="2/minute")
    form = {"grant_type": "client_credentials"}
    basic = base64.b64encode(b"dashboard%3Acity:secret").decode()
    sent = [
        await client.post(TOKEN_URL, data={**form, "client_id": "dashboard:city"}),
        # HTTP Basic (RFC 6749 §2.3.1): the client_id form-urlencoded, then base64.
        await client.post(TOKEN_URL, data=form, headers={"Authorization": f"Basic {basic}"}),
        await client.post(TOKEN_URL, data={**form, "client_id": "dashboard:city"}),
    ]
    assert [r.status_code == 429 for r in sent] == [False, False, True]
    other = await client.post(TOKEN_URL, data={**form, "client_id": "bank"})
    assert other.status_code != 429


async def test_every_spelling_of_a_client_id_counts_as_that_client(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    limit(app, token_ip="100/minute", login="2/minute")
    client_id = uuid.uuid4()
    form = {"grant_type": "client_credentials", "client_secret": "wrong"}
    spellings = (str(client_id), client_id.hex.upper(), f"urn:uuid:{client_id}")
    sent = [await client.post(TOKEN_URL, data={**form, "client_id": s}) for s in spellings]
    assert [r.status_code == 429 for r in sent] == [False, False, True]


async def test_searches_by_id_number_without_pii_read_are_limited(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """A masked ID number hides only the birth date: searching must not guess it."""
    limit(app, id_search="2/minute")
    search = {"id_number": ID_HEAD_A1}
    secretary = world.headers("secretary_a1")  # no pii:read
    for _ in range(2):
        found = await client.post("/api/v1/households/search", json=search, headers=secretary)
        assert found.status_code == 200 and len(found.json()["items"]) == 1, found.text
    refused = await client.post("/api/v1/households/search", json=search, headers=secretary)
    body = problem(refused, 429, "rate_limited")
    assert "searches by ID number" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Other reads of the same caller are not counted by it; a caller who sees ID numbers anyway
    # is not limited by it.
    assert (await client.get("/api/v1/households", headers=secretary)).is_success
    officer = world.headers("officer_a1")
    for _ in range(3):
        found = await client.post("/api/v1/households/search", json=search, headers=officer)
        assert found.status_code == 200, found.text


async def test_the_token_form_reaches_the_route_whole(app: FastAPI, world: World) -> None:
    """The form is read into memory to name the login, then given to the route: gzipped too."""
    import gzip

    limit(app, token_ip="100/minute", login="5/minute")
    body = "&".join(
        f"{k}={v}" for k, v in login_form(world.users["officer_a2"].username).items()
    ).encode()
    async with from_address(app, "192.0.2.9") as client:
        response = await client.post(
            TOKEN_URL,
            content=gzip.compress(body),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Encoding": "gzip",
            },
        )
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit"].startswith('"login";r=4;')


async def test_an_oversized_token_body_is_refused_as_everywhere(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Read by the rate limit, the form is still bounded by the body limit: 413, not a 500."""
    form = {**login_form("someone"), "padding": "x" * (get_settings().max_body_bytes + 1)}
    content = str(httpx.QueryParams(form)).encode()

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length to refuse it by
        for start in range(0, len(content), 65536):
            yield content[start : start + 65536]

    for body in (content, streamed()):
        response = await client.post(
            TOKEN_URL, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        problem(response, 413, "payload_too_large")


async def test_a_client_gone_before_its_form_arrived_is_counted_by_address(
    app: FastAPI,
) -> None:
    limits = limit(app, token_ip="5/minute", login="1/minute")
    scope = {
        "type": "http",
        "method": "POST",
        "path": TOKEN_URL,
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("203.0.113.50", 50000),
    }

    async def disconnected() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    verdict, receive = await limits.check_request(scope, disconnected)
    assert verdict is not None and verdict.allowed
    assert verdict.headers["RateLimit-Policy"] == '"ip";q=5;w=60'  # no login named
    assert (await receive())["type"] == "http.disconnect"


async def test_default_limits_let_a_login_through(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(TOKEN_URL, data=login_form(world.users["officer_a1"].username))
    assert response.status_code == 200
    assert response.headers["ratelimit-policy"] == '"ip";q=120;w=60, "login";q=20;w=60'


# --- the store ------------------------------------------------------------------------------


async def test_an_unreachable_redis_lets_requests_through(
    app: FastAPI, client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail-open: an outage of the counter store must not become an outage of the API."""
    limits = limit(
        app,
        user="1/minute",
        storage_uri=f"redis://:secret@127.0.0.1:{free_port()}/0",
    )
    headers = world.headers("officer_a1")
    try:
        with caplog.at_level(logging.WARNING, logger="fieldsync.ratelimit"):
            for _ in range(3):
                response = await client.get("/api/v1/me", headers=headers)
                assert response.status_code == 200 and "ratelimit" not in response.headers
    finally:
        await limits.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "fieldsync.ratelimit"]
    assert len(warnings) == 1, warnings  # once per outage, not per request
    assert "requests pass unlimited" in warnings[0]
    assert "secret" not in warnings[0]


async def test_limits_resume_when_the_store_answers_again(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = limit(app, user="1/minute")
    headers = world.headers("officer_a1")

    async def unreachable(*args: Any, **kwargs: Any) -> bool:
        raise StorageError(ConnectionError("Connection refused"))

    with caplog.at_level(logging.INFO, logger="fieldsync.ratelimit"):
        with monkeypatch.context() as patch:
            patch.setattr(limits.limiter, "hit", unreachable)
            assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        # Answering again, but not tried before the pause is over: still unlimited.
        for _ in range(2):
            response = await client.get("/api/v1/me", headers=headers)
            assert response.status_code == 200 and "ratelimit" not in response.headers
        limits._paused_until = 0  # the pause is over
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 429
    logged = [r for r in caplog.records if r.name == "fieldsync.ratelimit"]
    assert [r.levelname for r in logged] == ["WARNING", "INFO"]
    assert "answers again" in logged[1].getMessage()


@pytest.mark.parametrize(
    "field, value",
    [
        ("rate_limit_client", "lots"),
        ("rate_limit_login", "20/fortnight"),
        ("rate_limit_storage_uri", "memcached://127.0.0.1:11211"),
    ],
)
def test_bad_settings_are_refused_at_start(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings.model_validate({field: value})


# --- the contract ---------------------------------------------------------------------------


def test_the_contract_documents_429_where_limits_apply() -> None:
    """Whatever the settings (test_openapi.py checks that this is the published document)."""
    document = create_app().openapi()
    limited = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            refused = operation["responses"].get("429")
            if path == TOKEN_URL or (path.startswith("/api/v1/") and operation.get("security")):
                assert refused, f"{method.upper()} {path}: 429 not documented"
                assert "Retry-After" in refused["headers"]
                assert "application/problem+json" in refused["content"]
                limited.append(path)
            elif path in ("/healthz", "/readyz", "/api/v1/auth/revoke"):
                assert refused is None
    assert TOKEN_URL in limited and "/api/v1/households" in limited
