"""Request bodies: gzip decoding, limits counted after inflation, per-path limits; gzip answers."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from app.core.config import get_settings
from app.core.middleware import RequestBodyMiddleware
from tests.assertions import problem
from tests.builders import World
from tests.records.bodies import API, counts, visit_body

MIB = 1_048_576


def gzip_bomb(inflated_size: int) -> bytes:
    """`inflated_size` zero bytes, gzip-compressed without ever holding them all."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    parts = [compressor.compress(block) for _ in range(inflated_size // MIB)]
    return b"".join(parts) + compressor.flush()


async def put_raw(
    client: httpx.AsyncClient,
    world: World,
    content: bytes,
    *,
    encoding: str | None = "gzip",
    visit_id: uuid.UUID | None = None,
) -> httpx.Response:
    headers = {**world.headers("officer_a1"), "Content-Type": "application/json"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    url = f"{API}/visits/{visit_id or uuid.uuid4()}"
    return await client.put(url, content=content, headers=headers)


# --- on the real app ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZip"])
async def test_a_gzip_body_is_the_same_record_as_the_plain_one(
    client: httpx.AsyncClient, world: World, encoding: str
) -> None:
    visit_id = uuid.uuid4()
    body = visit_body(world.households["a1"].id)
    raw = json.dumps(body).encode()

    zipped = await put_raw(client, world, gzip.compress(raw), encoding=encoding, visit_id=visit_id)
    plain = await put_raw(client, world, raw, encoding=None, visit_id=visit_id)

    assert (zipped.status_code, zipped.headers["Record-Outcome"]) == (201, "created"), zipped.text
    # The plain body, sent again, is the record already stored: the same content.
    assert (plain.status_code, plain.headers["Record-Outcome"]) == (200, "unchanged"), plain.text
    assert plain.json() == zipped.json()
    assert zipped.json()["findings"] == body["findings"]


async def test_identity_is_accepted(client: httpx.AsyncClient, world: World) -> None:
    raw = json.dumps(visit_body(world.households["a1"].id)).encode()
    response = await put_raw(client, world, raw, encoding="identity")
    assert response.status_code == 201, response.text


async def test_a_gzip_bomb_is_413_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    limit = get_settings().max_body_bytes
    bomb = gzip_bomb(50 * MIB)
    assert len(bomb) < limit  # its declared length passes: only inflating shows the size
    before = await counts(session)
    visit_id = uuid.uuid4()

    response = await put_raw(client, world, bomb, visit_id=visit_id)

    body = problem(response, 413, "payload_too_large")
    assert body["limit_bytes"] == limit
    assert body["retryable"] is False
    assert {"type", "title", "status", "detail", "code", "retryable"} <= body.keys()
    assert response.headers["x-request-id"]
    assert await counts(session) == before
    read = await client.get(f"{API}/visits/{visit_id}", headers=world.headers("officer_a1"))
    assert read.status_code == 404


async def test_a_small_gzip_body_that_inflates_past_the_limit_is_413(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    limit = get_settings().max_body_bytes
    body = visit_body(world.households["a1"].id, findings="x" * (limit + 1))
    compressed = gzip.compress(json.dumps(body).encode())
    assert len(compressed) < limit // 100
    before = await counts(session)

    response = await put_raw(client, world, compressed)

    assert problem(response, 413, "payload_too_large")["limit_bytes"] == limit
    assert await counts(session) == before


async def test_a_streamed_gzip_body_is_counted_as_it_inflates(
    client: httpx.AsyncClient, world: World
) -> None:
    bomb = gzip_bomb(20 * MIB)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(bomb), 4096):
            yield bomb[start : start + 4096]

    response = await client.put(
        f"{API}/visits/{uuid.uuid4()}",
        content=chunks(),
        headers={**world.headers("officer_a1"), "Content-Encoding": "gzip"},
    )
    body = problem(response, 413, "payload_too_large")
    assert body["limit_bytes"] == get_settings().max_body_bytes


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, gzip", "compress"])
async def test_other_content_codings_are_415(
    client: httpx.AsyncClient, session: AsyncSession, world: World, encoding: str
) -> None:
    before = await counts(session)
    raw = json.dumps(visit_body(world.households["a1"].id)).encode()

    response = await put_raw(client, world, raw, encoding=encoding)

    body = problem(response, 415, "unsupported_content_encoding")
    assert body["retryable"] is False
    assert repr(encoding) in body["detail"]
    assert "gzip" in body["detail"] and "identity" in body["detail"]
    assert await counts(session) == before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not gzip at all", id="garbage"),
        pytest.param(gzip.compress(b'{"revision": 1, "mode": "in_home"}')[:-6], id="truncated"),
        pytest.param(gzip.compress(b"{}")[:-4] + b"\0\0\0\0", id="bad-length"),
        pytest.param(gzip.compress(b"{}") + b"trailing", id="trailing-garbage"),
    ],
)
async def test_a_corrupt_gzip_body_is_400(
    client: httpx.AsyncClient, session: AsyncSession, world: World, content: bytes
) -> None:
    before = await counts(session)
    response = await put_raw(client, world, content)
    body = problem(response, 400, "invalid_body_encoding")
    assert body["retryable"] is False
    assert await counts(session) == before


async def test_the_sync_batch_path_takes_bodies_over_the_default_limit(
    client: httpx.AsyncClient, world: World
) -> None:
    settings = get_settings()
    assert settings.max_body_bytes < 2 * MIB < settings.sync_max_body_bytes
    content = b'{"records": [], "padding": "' + b" " * (2 * MIB) + b'"}'
    headers = {**world.headers("officer_a1"), "Content-Type": "application/json"}

    normal = await client.put(f"{API}/visits/{uuid.uuid4()}", content=content, headers=headers)
    sync = await client.post(f"{API}/sync/batches", content=content, headers=headers)

    assert problem(normal, 413, "payload_too_large")["limit_bytes"] == settings.max_body_bytes
    # Whatever the batch endpoint makes of it, the size is not what it refuses.
    assert sync.status_code != 413, sync.text

    # Its own limit is refused up front, whether or not the route reads the body.
    too_big = b" " * (settings.sync_max_body_bytes + 1)
    huge = await client.post(f"{API}/sync/batches", content=too_big, headers=headers)
    assert problem(huge, 413, "payload_too_large")["limit_bytes"] == settings.sync_max_body_bytes


# --- gzip answers ------------------------------------------------------------------------


async def test_large_answers_are_gzipped_with_their_headers_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"{API}/households/{world.households['a1'].id}"
    headers = world.headers("admin_a")

    zipped = await client.get(url, headers={**headers, "Accept-Encoding": "gzip"})
    plain = await client.get(url, headers={**headers, "Accept-Encoding": "identity"})

    assert zipped.status_code == plain.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert zipped.json() == plain.json()  # httpx inflates it
    assert zipped.headers["etag"] == plain.headers["etag"]  # If-Match still compares equal
    assert zipped.headers["x-request-id"]
    assert zipped.headers["cache-control"] == "private, no-cache"
    vary = [v.strip() for v in zipped.headers["vary"].split(",")]
    # Origin: the CORS middleware's (answers may differ by origin).
    assert sorted(vary) == ["Accept-Encoding", "Authorization", "Origin"]


async def test_tiny_answers_are_not_gzipped(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert len(response.content) < 1024
    assert "content-encoding" not in response.headers


# --- the middleware on its own: per-path limits, what the app downstream sees --------------

SMALL, LARGE = 2048, 8192


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/small")
    @app.post("/large")
    @app.post("/large/x")
    async def echo(request: Request) -> dict[str, Any]:
        body = await request.body()
        return {
            "size": len(body),
            "head": body[:16].decode("latin-1"),
            "content_encoding": request.headers.get("content-encoding"),
            "content_length": request.headers.get("content-length"),
        }

    @app.post("/json")
    async def parse(data: dict[str, Any]) -> dict[str, Any]:
        return data

    app.add_middleware(RequestBodyMiddleware, max_bytes=SMALL, path_limits={"/large": LARGE})
    return app


@pytest.fixture
async def echo() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=echo_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("streamed", [False, True])
async def test_each_path_has_its_limit(echo: httpx.AsyncClient, streamed: bool) -> None:
    def content(size: int) -> Any:
        data = b"x" * size
        if not streamed:
            return data

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, size, 1000):
                yield data[start : start + 1000]

        return chunks()

    assert (await echo.post("/small", content=content(SMALL))).json()["size"] == SMALL
    small = await echo.post("/small", content=content(SMALL + 1))
    assert problem(small, 413, "payload_too_large")["limit_bytes"] == SMALL
    assert (await echo.post("/large", content=content(LARGE))).json()["size"] == LARGE
    large = await echo.post("/large", content=content(LARGE + 1))
    assert problem(large, 413, "payload_too_large")["limit_bytes"] == LARGE
    # Exact paths only: a path below the large one keeps the default.
    below = await echo.post("/large/x", content=content(SMALL + 1))
    assert problem(below, 413, "payload_too_large")["limit_bytes"] == SMALL


async def test_the_app_sees_the_inflated_body_without_the_coding_headers(
    echo: httpx.AsyncClient,
) -> None:
    data = b"0123456789abcdef" * 400  # 6400 bytes: over the default, within /large
    response = await echo.post(
        "/large", content=gzip.compress(data), headers={"Content-Encoding": "gzip"}
    )
    assert response.json() == {
        "size": len(data),
        "head": "0123456789abcdef",
        "content_encoding": None,
        "content_length": None,
    }
    refused = await echo.post(
        "/small", content=gzip.compress(data), headers={"Content-Encoding": "gzip"}
    )
    assert problem(refused, 413, "payload_too_large")["limit_bytes"] == SMALL


async def test_limits_count_inflated_bytes_exactly(echo: httpx.AsyncClient) -> None:
    at = await echo.post(
        "/large", content=gzip.compress(bytes(LARGE)), headers={"Content-Encoding": "gzip"}
    )
    assert at.json()["size"] == LARGE
    over = await echo.post(
        "/large", content=gzip.compress(bytes(LARGE + 1)), headers={"Content-Encoding": "gzip"}
    )
    assert problem(over, 413, "payload_too_large")["limit_bytes"] == LARGE


async def test_several_gzip_members_make_one_body(echo: httpx.AsyncClient) -> None:
    content = gzip.compress(b'{"a": ') + gzip.compress(b'"b"}')
    response = await echo.post(
        "/json",
        content=content,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.json() == {"a": "b"}


async def test_fastapi_parsing_a_refused_body_still_answers_the_problem(
    echo: httpx.AsyncClient,
) -> None:
    # FastAPI turns an error while reading the body into a 400 of its own; the caller must
    # get the body's problem instead.
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    big = await echo.post("/json", content=gzip_bomb(4 * MIB), headers=headers)
    assert problem(big, 413, "payload_too_large")["limit_bytes"] == SMALL
    corrupt = await echo.post("/json", content=b"\x1f\x8b garbage", headers=headers)
    problem(corrupt, 400, "invalid_body_encoding")


async def test_a_gzip_bomb_never_inflates_much_past_the_limit() -> None:
    bomb = gzip_bomb(64 * MIB)  # ~64 KiB: one message of the whole body
    limit = 256 * 1024  # above the compressed size: only the inflated one passes it
    assert len(bomb) < limit
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(len(message["body"]))
            if not message.get("more_body"):
                break

    middleware = RequestBodyMiddleware(app, max_bytes=limit)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-encoding", b"gzip")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": bomb, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    tracemalloc.start()
    try:
        await middleware(scope, receive, send)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert seen == []  # the app never got a byte of it
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["limit_bytes"] == limit
    assert peak < 4 * limit  # 64 MiB inflated whole would show here
