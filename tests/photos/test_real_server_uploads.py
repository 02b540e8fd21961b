"""Resumable uploads against a real server, with the official Python tus client (tuspy), on
both storage backends: the local filesystem and an S3-compatible store (moto, on loopback).

The phone's upload is cut at random offsets, each time resumed by a fresh client that knows
only the upload's URL (HEAD, then PATCHes from the offset the server gives), and once by the
network itself: a PATCH whose connection drops midway, of which the server keeps what arrived.
"""

from __future__ import annotations

import hashlib
import io
import random
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlmodel import select
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from app.photos.models import Photo, Upload, UploadPart
from tests.builders import PASSWORD
from tests.deployment import OFFICER, Deployment, deploy
from tests.photos.s3_server import S3Endpoint, new_bucket, running_s3, sync_client
from tests.sync.server_helpers import login

pytestmark = pytest.mark.slow


class Sha256Uploader(Uploader):
    """tuspy sends sha1 chunk checksums; the server verifies sha256 ones just as well."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Endpoint]:
    with running_s3() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def deployment(
    backend: str, tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Deployment, S3Endpoint | None]]:
    if backend == "s3":
        endpoint = new_bucket(request.getfixturevalue("s3"))
        with deploy(tmp_path, **endpoint.settings_env()) as deployed:
            yield deployed, endpoint
    else:
        with deploy(tmp_path) as deployed:
            yield deployed, None


def noise_jpeg(width: int, height: int, seed: int) -> bytes:
    """A photo-sized JPEG that does not compress away: random pixels."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _cut_patch(base: str, url: str, token: str, *, offset: int, body: bytes, send: int) -> None:
    """A PATCH announcing all of `body` whose connection drops after `send` bytes of it."""
    address = urlsplit(base)
    head = (
        f"PATCH {urlsplit(url).path} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Tus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(head + body[:send])
        conn.shutdown(socket.SHUT_RDWR)


def _head_offset(base: str, url: str, token: str) -> int:
    response = httpx.head(
        url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    )
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


def test_upload_cut_at_random_offsets_resumes_to_the_exact_file(
    deployment: tuple[Deployment, S3Endpoint | None],
) -> None:
    """Acceptance 1: cut many times, resumed with HEAD + PATCH by the official client, the
    stored file has the announced sha256, on both storage backends."""
    deployed, s3 = deployment
    base = deployed.server.base
    token = login(base, OFFICER, PASSWORD)
    data = noise_jpeg(360, 240, seed=1)
    sha256 = hashlib.sha256(data).hexdigest()
    household_id = deployed.households[0]
    rng = random.Random(20261123)
    client = TusClient(f"{base}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    metadata = {
        "sha256": sha256,
        "household_id": str(household_id),
        "filename": "危房改造前.jpg",
        "filetype": "image/jpeg",
        "tag": "before",
    }

    def phone(url: str | None) -> Uploader:
        """A fresh client process: only the upload's URL survives (HEAD tells the offset)."""
        kind = Sha256Uploader if rng.random() < 0.5 else Uploader
        return kind(
            file_stream=io.BytesIO(data),
            url=url,
            client=client,
            chunk_size=rng.randint(4_000, 40_000),
            metadata=metadata,
            upload_checksum=True,
        )

    uploader = phone(None)
    cuts = sorted(rng.sample(range(1, len(data)), 15))
    uploader.upload(stop_at=cuts[0])  # creates the upload (POST), then PATCHes
    url = str(uploader.url)
    for round_, cut in enumerate(cuts):
        if cut <= uploader.offset:
            continue
        uploader.upload(stop_at=cut)
        assert uploader.offset == cut
        if round_ == 7:
            # The network drops a PATCH midway: what arrived is kept, nothing more.
            sent = rng.randint(1, 20_000)
            _cut_patch(base, url, token, offset=cut, body=data[cut : cut + 40_000], send=sent)
            resumed = _wait_offset_settles(base, url, token)
            assert cut <= resumed <= cut + sent
        uploader = phone(url)  # resumes: HEAD, then PATCH from there
        assert uploader.offset == _head_offset(base, url, token)
    uploader.upload()

    response = httpx.get(
        f"{base}/api/v1/photos/{sha256}/content", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == sha256
    photos = deployed.db.scalars(select(Photo).where(Photo.sha256 == sha256))
    assert [(p.size_bytes, p.width, p.height) for p in photos] == [(len(data), 360, 240)]
    upload = deployed.db.scalars(select(Upload))[0]
    assert upload.completed_at is not None and upload.offset == len(data)
    assert deployed.db.scalars(select(UploadPart)) == []
    if s3 is not None:
        objects = sync_client(s3).list_objects_v2(Bucket=s3.bucket).get("Contents", [])
        keys = {item["Key"] for item in objects}
        assert f"photos/{sha256[:2]}/{sha256}" in keys
        assert not any(key.startswith("uploads/") for key in keys), keys
        body = sync_client(s3).get_object(Bucket=s3.bucket, Key=f"photos/{sha256[:2]}/{sha256}")
        assert hashlib.sha256(body["Body"].read()).hexdigest() == sha256


def _wait_offset_settles(base: str, url: str, token: str) -> int:
    """The offset once the server has dealt with the dropped connection (it stores the part
    it received after noticing the disconnect)."""
    deadline = time.monotonic() + 10
    last, stable = -1, 0
    while time.monotonic() < deadline:
        offset = _head_offset(base, url, token)
        stable = stable + 1 if offset == last else 0
        if stable >= 3:
            return offset
        last = offset
        time.sleep(0.1)
    raise AssertionError("the upload's offset kept moving")


def test_official_client_uploads_in_one_go_and_a_repeat_stores_nothing_new(
    deployment: tuple[Deployment, S3Endpoint | None],
) -> None:
    """tuspy unchanged (default settings: one PATCH of the whole file); uploading the same
    photo again succeeds and the photo is still stored once."""
    deployed, _ = deployment
    base = deployed.server.base
    token = login(base, OFFICER, PASSWORD, device_id="android-" + uuid.uuid4().hex[:8])
    data = noise_jpeg(200, 150, seed=2)
    sha256 = hashlib.sha256(data).hexdigest()
    client = TusClient(f"{base}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    metadata = {"sha256": sha256, "household_id": str(deployed.households[1])}

    first = client.uploader(file_stream=io.BytesIO(data), metadata=metadata)
    first.upload()
    assert first.offset == len(data)
    again = client.uploader(file_stream=io.BytesIO(data), metadata=metadata)
    again.upload()
    assert again.url != first.url
    assert _head_offset(base, str(again.url), token) == len(data)
    assert len(deployed.db.scalars(select(Photo))) == 1
    assert len(deployed.db.scalars(select(Upload).where(Upload.completed_at.is_not(None)))) == 2
