"""The photo store contract, run against both backends: the local directory and S3 (moto)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import FlexibleChecksumError

from app.core.config import Settings
from app.photos.s3 import PART_BYTES, S3Storage
from app.photos.storage import CHUNK_BYTES, LocalStorage, Storage, make_storage
from tests.photos.s3_server import S3Endpoint, new_bucket, running_s3, sync_client

DATA = os.urandom(3000)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with running_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def aio_session() -> AioSession:
    return get_session()


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint) -> S3Endpoint:
    return new_bucket(s3_endpoint)


@pytest.fixture
async def s3_storage(s3_bucket: S3Endpoint, aio_session: AioSession) -> AsyncIterator[S3Storage]:
    store = S3Storage(
        bucket=s3_bucket.bucket,
        endpoint_url=s3_bucket.url,
        region=s3_bucket.region,
        access_key_id=s3_bucket.access_key,
        secret_access_key=s3_bucket.secret_key,
        session=aio_session,
    )
    yield store
    await store.close()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "s3":
        s3: S3Storage = request.getfixturevalue("s3_storage")
        return s3
    return LocalStorage(tmp_path / "media")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.jpg"
    path.write_bytes(DATA)
    return path


async def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# --- the contract, on both backends ----------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),  # whole
        (1000, None),  # from an offset to the end
        (1000, 1010),
        (0, 1),
        (2999, None),  # the last byte
        (500, 500),  # empty
        (2500, 5000),  # past the end: cut short
        (3000, None),  # at the end: nothing
        (4000, None),  # beyond the end: nothing
    ],
)
async def test_put_then_read_ranges(
    storage: Storage, source: Path, start: int, end: int | None
) -> None:
    await storage.put_file("photos/ab/one", source, content_type="image/jpeg")

    assert await read_all(storage, "photos/ab/one", start, end) == DATA[start:end]


async def test_exists_and_size_follow_put_and_delete(storage: Storage, source: Path) -> None:
    assert await storage.exists("photos/ab/one") is False
    assert await storage.size("photos/ab/one") is None

    await storage.put_file("photos/ab/one", source, content_type="image/jpeg")
    assert await storage.exists("photos/ab/one") is True
    assert await storage.size("photos/ab/one") == len(DATA)
    assert await storage.exists("photos/ab/other") is False

    await storage.delete("photos/ab/one")
    assert await storage.exists("photos/ab/one") is False
    assert await storage.size("photos/ab/one") is None


async def test_second_put_of_the_same_key_is_harmless(storage: Storage, source: Path) -> None:
    await storage.put_file("photos/ab/one", source, content_type="image/jpeg")
    await storage.put_file("photos/ab/one", source, content_type="image/jpeg")

    assert await storage.size("photos/ab/one") == len(DATA)
    assert await read_all(storage, "photos/ab/one") == DATA
    assert await anyio.Path(source).read_bytes() == DATA  # the caller's file is untouched


async def test_delete_of_a_missing_key_is_no_error(storage: Storage, source: Path) -> None:
    await storage.delete("photos/ab/never")
    await storage.put_file("photos/ab/one", source, content_type="image/jpeg")
    await storage.delete("photos/ab/one")
    await storage.delete("photos/ab/one")

    assert await storage.exists("photos/ab/one") is False


@pytest.mark.parametrize("prefix", ["uploads/u1/", "uploads/u1"])
async def test_delete_prefix_removes_only_that_prefix(
    storage: Storage, source: Path, prefix: str
) -> None:
    doomed = ["uploads/u1/0-a", "uploads/u1/100-b", "uploads/u1/deeper/c"]
    # "uploads/u10/…" shares the string "uploads/u1" but is another folder.
    kept = ["uploads/u10/0-a", "uploads/u2/0-a", "photos/ab/one"]
    for key in doomed + kept:
        await storage.put_file(key, source, content_type="application/octet-stream")

    assert await storage.delete_prefix(prefix) == len(doomed)

    for key in doomed:
        assert await storage.exists(key) is False, key
    for key in kept:
        assert await storage.exists(key) is True, key
    assert await storage.delete_prefix(prefix) == 0
    assert await storage.delete_prefix("uploads/never/") == 0


@pytest.mark.parametrize("prefix", ["", "/"])
async def test_delete_prefix_refuses_the_whole_store(storage: Storage, prefix: str) -> None:
    with pytest.raises(ValueError):
        await storage.delete_prefix(prefix)


@pytest.mark.parametrize(("start", "end"), [(0, None), (10, None), (10, 20)])
async def test_read_of_a_missing_key_raises_file_not_found(
    storage: Storage, start: int, end: int | None
) -> None:
    with pytest.raises(FileNotFoundError):
        await read_all(storage, "photos/ab/never", start, end)


@pytest.mark.parametrize("key", ["../x", "photos/../../x", "/etc/passwd"])
async def test_keys_escaping_the_store_are_refused(
    storage: Storage, source: Path, tmp_path: Path, key: str
) -> None:
    with pytest.raises(ValueError):
        await storage.put_file(key, source, content_type="image/jpeg")
    with pytest.raises(ValueError):
        await storage.exists(key)
    with pytest.raises(ValueError):
        await read_all(storage, key)
    with pytest.raises(ValueError):
        await storage.delete(key)
    assert not (tmp_path / "x").exists()


async def test_large_file_reads_back_whole_in_bounded_chunks(
    storage: Storage, tmp_path: Path
) -> None:
    data = os.urandom(20 << 20)  # above the single-PUT limit: a multipart upload of 3 parts
    path = tmp_path / "big.jpg"
    path.write_bytes(data)

    await storage.put_file("photos/cd/big", path, content_type="image/jpeg")

    assert await storage.size("photos/cd/big") == len(data)
    digest = hashlib.sha256()
    async for chunk in storage.read("photos/cd/big"):
        assert 0 < len(chunk) <= CHUNK_BYTES
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    # A range across the boundary of the first two parts.
    start, end = PART_BYTES - 10, PART_BYTES + 10
    assert await read_all(storage, "photos/cd/big", start, end) == data[start:end]


async def test_reader_that_stops_early_leaves_the_store_usable(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "mid.jpg"
    path.write_bytes(os.urandom(3 * CHUNK_BYTES))
    await storage.put_file("photos/ef/mid", path, content_type="image/jpeg")

    # More readers than the S3 client's connection pool holds (10): if each kept its connection,
    # the next request would wait for one forever.
    with anyio.fail_after(5):
        for _ in range(15):
            reader = storage.read("photos/ef/mid")
            assert await anext(reader)
            await reader.aclose()  # type: ignore[attr-defined]

        assert await storage.size("photos/ef/mid") == 3 * CHUNK_BYTES


# --- the local directory ----------------------------------------------------------------------


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def test_local_put_leaves_only_the_final_files(tmp_path: Path, source: Path) -> None:
    store = LocalStorage(tmp_path / "media")
    await store.put_file("photos/ab/one", source, content_type="image/jpeg")
    await store.put_file("photos/ab/one", source, content_type="image/jpeg")
    await store.put_file("uploads/u1/0-a", source, content_type="image/jpeg")

    assert files_under(store.root) == {"photos/ab/one", "uploads/u1/0-a"}


class _BreaksAfterOneBlock:
    """A source file whose read fails after the first block, like a disk going away."""

    def __init__(self, file: Any, on_second_read: Any) -> None:
        self.file = file
        self.reads = 0
        self.on_second_read = on_second_read

    def __enter__(self) -> _BreaksAfterOneBlock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def read(self, size: int) -> bytes:
        self.reads += 1
        if self.reads > 1:
            self.on_second_read()
            raise OSError("input/output error")
        block: bytes = self.file.read(size)
        return block


async def test_local_put_failing_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStorage(tmp_path / "media")
    target = store.root / "photos" / "ab" / "big"
    source = tmp_path / "big.jpg"
    source.write_bytes(os.urandom(3 * CHUNK_BYTES))
    seen_during_copy: list[bool] = []
    real_open = Path.open

    def failing_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        file = real_open(self, mode, *args, **kwargs)
        if self == source:
            return _BreaksAfterOneBlock(file, lambda: seen_during_copy.append(target.exists()))
        return file

    def no_link(*args: object) -> None:
        raise OSError("cross-device link")  # force the copy, as from another filesystem

    monkeypatch.setattr(Path, "open", failing_open)
    monkeypatch.setattr(os, "link", no_link)

    with pytest.raises(OSError, match="input/output error"):
        await store.put_file("photos/ab/big", source, content_type="image/jpeg")

    assert seen_during_copy == [False]  # the final name never named a partial file
    assert not target.exists()
    assert files_under(store.root) == set()


async def test_local_put_failing_at_fsync_leaves_nothing(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStorage(tmp_path / "media")

    def failing_fsync(fd: int) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)

    with pytest.raises(OSError, match="no space left"):
        await store.put_file("photos/ab/one", source, content_type="image/jpeg")

    assert files_under(store.root) == set()


# --- S3 ---------------------------------------------------------------------------------------


async def test_s3_uploads_carry_the_sha256(
    s3_storage: S3Storage, s3_bucket: S3Endpoint, source: Path
) -> None:
    await s3_storage.put_file("photos/ab/one", source, content_type="image/jpeg")

    head = sync_client(s3_bucket).head_object(
        Bucket=s3_bucket.bucket, Key="photos/ab/one", ChecksumMode="ENABLED"
    )
    assert head["ChecksumSHA256"] == sha256_b64(DATA)
    assert head["ContentType"] == "image/jpeg"


async def test_s3_large_file_goes_up_in_parts(
    s3_storage: S3Storage, s3_bucket: S3Endpoint, tmp_path: Path
) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(os.urandom(2 * PART_BYTES + 1))

    await s3_storage.put_file("photos/cd/big", path, content_type="image/jpeg")

    client = sync_client(s3_bucket)
    head = client.head_object(Bucket=s3_bucket.bucket, Key="photos/cd/big")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag names its part count
    assert head["ContentType"] == "image/jpeg"
    assert not client.list_multipart_uploads(Bucket=s3_bucket.bucket).get("Uploads")


async def test_s3_failed_multipart_upload_is_aborted(
    s3_storage: S3Storage,
    s3_bucket: S3Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(os.urandom(2 * PART_BYTES + 1))
    s3 = await s3_storage._s3()
    real_upload_part = s3.upload_part
    calls = 0

    async def flaky_upload_part(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("connection reset by peer")
        return await real_upload_part(**kwargs)

    monkeypatch.setattr(s3, "upload_part", flaky_upload_part)

    with pytest.raises(ConnectionResetError):
        await s3_storage.put_file("photos/cd/big", path, content_type="image/jpeg")

    assert calls == 2
    assert await s3_storage.exists("photos/cd/big") is False
    uploads = sync_client(s3_bucket).list_multipart_uploads(Bucket=s3_bucket.bucket)
    assert not uploads.get("Uploads")


async def test_s3_corrupted_object_is_detected_on_read(
    s3_storage: S3Storage, s3_bucket: S3Endpoint
) -> None:
    # Stored with the checksum of other bytes: what a store returns after silent corruption.
    sync_client(s3_bucket).put_object(
        Bucket=s3_bucket.bucket,
        Key="photos/ab/rotten",
        Body=DATA,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=sha256_b64(b"other bytes"),
    )

    with pytest.raises(FlexibleChecksumError):
        await read_all(s3_storage, "photos/ab/rotten")


async def test_s3_reader_that_stops_early_closes_the_body(
    s3_storage: S3Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mid.jpg"
    path.write_bytes(os.urandom(3 * CHUNK_BYTES))
    await s3_storage.put_file("photos/ef/mid", path, content_type="image/jpeg")
    s3 = await s3_storage._s3()
    real_get_object = s3.get_object
    responses: list[Any] = []

    async def recording_get_object(**kwargs: Any) -> Any:
        responses.append(await real_get_object(**kwargs))
        return responses[-1]

    monkeypatch.setattr(s3, "get_object", recording_get_object)

    reader = s3_storage.read("photos/ef/mid")
    assert await anext(reader)
    assert responses[0]["Body"].raw_stream.closed is False
    await reader.aclose()  # type: ignore[attr-defined]

    assert responses[0]["Body"].raw_stream.closed is True


async def test_s3_empty_range_makes_no_request(
    s3_storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = await s3_storage._s3()

    async def no_request(**kwargs: Any) -> None:
        raise AssertionError(f"unexpected get_object({kwargs})")

    monkeypatch.setattr(s3, "get_object", no_request)

    assert await read_all(s3_storage, "photos/ab/one", 7, 7) == b""


async def test_s3_store_from_settings_env_keys_under_the_prefix(
    s3_bucket: S3Endpoint, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**s3_bucket.settings_env(), "FIELDSYNC_S3_PREFIX": "county-7"}.items():
        monkeypatch.setenv(name, value)
    store = make_storage(Settings(_env_file=None))
    assert isinstance(store, S3Storage)
    client = sync_client(s3_bucket)
    try:
        await store.put_file("photos/ab/one", source, content_type="image/jpeg")
        assert await store.exists("photos/ab/one") is True
        listed = client.list_objects_v2(Bucket=s3_bucket.bucket)
        assert [item["Key"] for item in listed["Contents"]] == ["county-7/photos/ab/one"]

        assert await store.delete_prefix("photos/") == 1
        assert client.list_objects_v2(Bucket=s3_bucket.bucket)["KeyCount"] == 0
    finally:
        await store.close()
