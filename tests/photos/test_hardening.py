"""What a careless or hostile client cannot do: malformed headers, endless parts or uploads,
small files that decode huge, and reading another village's photo by naming its sha256."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.photos.models import Photo, Upload
from tests.assertions import problem
from tests.builders import World
from tests.photos.images import jpeg_bytes, noisy_jpeg_bytes
from tests.photos.tus_helpers import CHUNK, TUS, UPLOADS, create, metadata, patch, sha256_hex
from tests.records.bodies import measure_body, put, visit_body
from tests.sync.helpers import count

API = "/api/v1"


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Upload-Length": "²".encode("latin-1")}, "header.Upload-Length"),
        ({"Upload-Length": "9" * 5000}, "header.Upload-Length"),
        ({"Upload-Length": "-1"}, "header.Upload-Length"),
        ({"Upload-Metadata": "sha256 é".encode("latin-1")}, "header.Upload-Metadata"),
        ({"Upload-Metadata": "shä256 YWJj".encode("latin-1")}, "header.Upload-Metadata"),
    ],
    ids=["unicode digit", "5000 digits", "negative", "non-ASCII base64", "non-ASCII key"],
)
async def test_malformed_creation_headers_are_named_in_a_400(
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
    headers: dict[str, bytes | str],
    field: str,
) -> None:
    data = jpeg_bytes()
    request: dict[str, bytes | str] = {
        **TUS,
        **world.headers("officer_a1"),
        "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata(
            sha256=sha256_hex(data), household_id=world.households["a1"].id
        ),
    }
    request.update(headers)
    body = problem(await client.post(UPLOADS, headers=request), 400, "invalid_header")
    assert [error["field"] for error in body["errors"]] == [field]
    assert await count(session, Upload) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Upload-Offset": "¹".encode("latin-1")},
        {"Upload-Offset": "9" * 5000},
        {"Upload-Checksum": "sha1 é".encode("latin-1")},
    ],
    ids=["unicode digit", "5000 digits", "non-ASCII digest"],
)
async def test_malformed_patch_headers_get_a_400(
    client: httpx.AsyncClient, world: World, headers: dict[str, bytes | str]
) -> None:
    officer = world.headers("officer_a1")
    data = jpeg_bytes()
    url = (await create(client, officer, data, household_id=world.households["a1"].id)).headers[
        "Location"
    ]
    request: dict[str, bytes | str] = {**TUS, **CHUNK, **officer, "Upload-Offset": "0"}
    request.update(headers)
    answer = await client.patch(url, headers=request, content=data)
    assert answer.status_code == 400, answer.text
    assert answer.headers["tus-resumable"] == "1.0.0"


async def test_a_range_too_long_or_backwards_is_ignored(
    client: httpx.AsyncClient, world: World
) -> None:
    officer = world.headers("officer_a1")
    data = jpeg_bytes()
    sha = sha256_hex(data)
    params = {"household_id": str(world.households["a1"].id)}
    assert (
        await client.put(f"{API}/photos/{sha}", headers=officer, params=params, content=data)
    ).status_code == 201
    for value in ("bytes=" + "9" * 5000 + "-", "bytes=5-2"):
        answer = await client.get(f"{API}/photos/{sha}/content", headers=officer | {"Range": value})
        assert answer.status_code == 200 and answer.content == data


async def test_an_upload_takes_a_bounded_number_of_parts(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "upload_max_parts", 3)
    officer = world.headers("officer_a1")
    data = jpeg_bytes()
    url = (await create(client, officer, data, household_id=world.households["a1"].id)).headers[
        "Location"
    ]
    for offset in range(3):
        sent = await patch(client, url, officer, offset, data[offset : offset + 1])
        assert sent.status_code == 204, sent.text
    refused = await patch(client, url, officer, 3, data[3:])
    problem(refused, 413, "too_many_parts")


async def test_a_user_has_a_bounded_number_of_unfinished_uploads(
    client: httpx.AsyncClient, session: AsyncSession, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "upload_max_unfinished", 2)
    officer = world.headers("officer_a1")
    a1 = world.households["a1"].id
    first = await create(client, officer, jpeg_bytes(color=(1, 2, 3)), household_id=a1)
    await create(client, officer, jpeg_bytes(color=(4, 5, 6)), household_id=a1)

    refused = await create(client, officer, jpeg_bytes(color=(7, 8, 9)), household_id=a1)
    problem(refused, 429, "too_many_uploads")
    assert refused.headers["retry-after"]
    assert await count(session, Upload) == 2
    # Another user is not held back; deleting one makes room.
    other = await create(client, world.headers("secretary_a1"), jpeg_bytes(), household_id=a1)
    assert other.status_code == 201
    deleted = await client.delete(first.headers["Location"], headers=TUS | officer)
    assert deleted.status_code == 204
    again = await create(client, officer, jpeg_bytes(color=(7, 8, 9)), household_id=a1)
    assert again.status_code == 201


async def test_a_tiny_file_that_would_decode_huge_is_refused_undecoded(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """A lossless WebP of 7000×7000 flat pixels is a few KB and 49 MP, under the pixel limit,
    but decoding it would take about 400 MB."""
    buffer = io.BytesIO()
    Image.new("RGBA", (7000, 7000), (200, 80, 40, 255)).save(buffer, "WEBP", lossless=True)
    data = buffer.getvalue()
    assert len(data) < 20_000
    sha = sha256_hex(data)
    answer = await client.put(
        f"{API}/photos/{sha}",
        headers=world.headers("officer_a1"),
        params={"household_id": str(world.households["a1"].id)},
        content=data,
    )
    body = problem(answer, 413, "image_too_large")
    assert "memory" in body["detail"]
    assert await session.get(Photo, sha) is None


async def test_naming_a_photo_in_a_record_does_not_open_it_proving_possession_does(
    client: httpx.AsyncClient, world: World
) -> None:
    """officer_a2 copies the sha256 of a village A1 photo into a visit of village A2: that
    proves nothing. Sending the bytes does."""
    data = noisy_jpeg_bytes()
    sha = sha256_hex(data)
    stored = await client.put(
        f"{API}/photos/{sha}",
        headers=world.headers("officer_a1"),
        params={"household_id": str(world.households["a1"].id)},
        content=data,
    )
    assert stored.status_code == 201
    visit = visit_body(world.households["a2"].id, photos=[{"sha256": sha, "tag": "after"}])
    assert (await put(client, world, "visit", visit, who="officer_a2")).status_code == 201

    officer_a2 = world.headers("officer_a2")
    for suffix in ("", "/content", "/thumbnail"):
        answer = await client.get(f"{API}/photos/{sha}{suffix}", headers=officer_a2)
        assert answer.status_code == 404, suffix

    proved = await client.put(f"{API}/photos/{sha}", headers=officer_a2, content=data)
    assert proved.status_code == 200, proved.text
    assert [ref["household_id"] for ref in proved.json()["references"]] == [
        str(world.households["a2"].id)
    ]
    content = await client.get(f"{API}/photos/{sha}/content", headers=officer_a2)
    assert content.status_code == 200 and content.content == data


async def test_creation_with_upload_checks_the_bodys_checksum(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    data = jpeg_bytes()
    headers = {
        **TUS,
        **CHUNK,
        **world.headers("officer_a1"),
        "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata(
            sha256=sha256_hex(data), household_id=world.households["a1"].id
        ),
        "Upload-Checksum": "sha1 " + "A" * 27 + "=",
    }
    problem(await client.post(UPLOADS, headers=headers, content=data), 460, "checksum_mismatch")
    assert await count(session, Upload) == 0


async def test_a_copied_sha256_does_not_show_another_villages_photo_as_held(
    client: httpx.AsyncClient, world: World
) -> None:
    """Issue 17: the household's photo list showed a foreign photo's type, size, dimensions
    and capture time to whoever named its sha256 in a record of their own."""
    data = noisy_jpeg_bytes()
    sha = sha256_hex(data)
    stored = await client.put(
        f"{API}/photos/{sha}",
        headers=world.headers("officer_a1"),
        params={"household_id": str(world.households["a1"].id)},
        content=data,
    )
    assert stored.status_code == 201
    measure_id = uuid.uuid4()
    assert (
        await client.put(
            f"{API}/measures/{measure_id}",
            json=measure_body(world.households["a2"].id),
            headers=world.headers("officer_a2"),
        )
    ).status_code == 201
    ref = {"sha256": sha, "tag": "after", "measure_id": str(measure_id)}
    visit = visit_body(world.households["a2"].id, photos=[ref])
    assert (await put(client, world, "visit", visit, who="officer_a2")).status_code == 201

    officer_a2 = world.headers("officer_a2")
    listed = await client.get(
        f"{API}/households/{world.households['a2'].id}/photos", headers=officer_a2
    )
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["held"] is False
    assert all(item.get(k) is None for k in ("content_type", "size_bytes", "width", "taken_at"))
    measure = await client.get(f"{API}/measures/{measure_id}/photos", headers=officer_a2)
    assert measure.status_code == 200
    assert [p["held"] for p in measure.json()["after"]] == [False]
    # The household's progress (before/after pairs) does not count it as held either.
    progress = await client.get(
        f"{API}/households/{world.households['a2'].id}/progress", headers=officer_a2
    )
    assert progress.status_code == 200
    [pair] = progress.json()["measures"]["photo_pairs"]
    assert [p["held"] for p in pair["after"]] == [False]
