"""The S3 photo store (AWS, MinIO, Ceph, OSS…), on aiobotocore.

Every write is atomic by nature of S3: an object appears whole when its PUT (or the completion of
its multipart upload) succeeds, or not at all. Every byte sent carries a SHA-256 checksum, so a
transfer corrupted on the way is refused by the store instead of being kept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from app.core.config import Settings
from app.photos.storage import CHUNK_BYTES

# Files up to this size go in one PUT; larger ones in a multipart upload of PART_BYTES parts
# (S3 wants parts of at least 5 MiB, except the last).
SINGLE_PUT_MAX_BYTES = 16 << 20
PART_BYTES = 8 << 20
# delete_objects takes at most this many keys.
DELETE_BATCH = 1000
_MISSING = ("404", "NoSuchKey", "NotFound")


def _is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING


def _read_block(file: IO[bytes], size: int) -> tuple[bytes, str]:
    """Up to `size` bytes of `file` and the base64 of their SHA-256 (S3's checksum form)."""
    data = file.read(size)
    return data, base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _read_file(path: Path) -> tuple[bytes, str]:
    with path.open("rb") as file:
        return _read_block(file, -1)


class S3Storage:
    """Objects in one bucket, each key under the configured prefix."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session: AioSession | None = None,
    ) -> None:
        self.bucket = bucket
        # "prod" and "prod/" both mean the folder prod/.
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            # None: botocore's usual chain (environment, profile, instance role).
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": AioConfig(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 5, "mode": "standard"},
                # MinIO, moto and most self-hosted stores serve buckets by path, not by host name.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                # We send our own SHA-256 with every upload; leaving botocore's default CRC32 off
                # also avoids its aws-chunked trailers, which some S3-compatible stores refuse.
                request_checksum_calculation="when_required",
                # Load the service model in a worker thread, not in the event loop.
                warm_up_loader_caches=True,
            ),
        }
        # Stores may share a session: it caches the service model that each client loads.
        self._session = session if session is not None else get_session()
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """The store the settings describe; it connects on first use."""

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=secret(settings.s3_access_key_id),
            secret_access_key=secret(settings.s3_secret_access_key),
        )

    async def _s3(self) -> Any:
        # The client's connection pool belongs to the event loop that creates it: it is made
        # inside the running loop, once, and kept until close().
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        self._session.create_client("s3", **self._client_args)
                    )
                    self._stack = stack
        return self._client

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(part in (".", "..") for part in parts):
            raise ValueError(f"invalid storage key: {key!r}")
        return self.prefix + key

    async def put_file(self, key: str, path: Path, *, content_type: str) -> None:
        name = self._key(key)
        s3 = await self._s3()
        stat = await anyio.Path(path).stat()
        if stat.st_size <= SINGLE_PUT_MAX_BYTES:
            data, checksum = await anyio.to_thread.run_sync(_read_file, path)
            await s3.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentType=content_type,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
            return
        await self._put_multipart(s3, name, path, content_type=content_type)

    async def _put_multipart(self, s3: Any, name: str, path: Path, *, content_type: str) -> None:
        upload = await s3.create_multipart_upload(
            Bucket=self.bucket, Key=name, ContentType=content_type, ChecksumAlgorithm="SHA256"
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            async with await anyio.open_file(path, "rb") as file:
                number = 1
                while True:
                    # One part in memory at a time, hashed in the same worker thread as it is read.
                    data, checksum = await anyio.to_thread.run_sync(
                        _read_block, file.wrapped, PART_BYTES
                    )
                    if not data:
                        break
                    part = await s3.upload_part(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=checksum,
                    )
                    parts.append(
                        {"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": checksum}
                    )
                    number += 1
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Uploaded parts are billed and invisible until aborted. Shielded: a cancelled
            # request must still clean up.
            # If the abort fails too, the original error is the one to report; a lifecycle rule
            # on the bucket (AbortIncompleteMultipartUpload) sweeps what is left.
            with anyio.CancelScope(shield=True), contextlib.suppress(BotoCoreError, ClientError):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise

    async def _head(self, key: str) -> dict[str, Any] | None:
        name = self._key(key)
        s3 = await self._s3()
        try:
            head: dict[str, Any] = await s3.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        return head

    async def exists(self, key: str) -> bool:
        return await self._head(key) is not None

    async def size(self, key: str) -> int | None:
        head = await self._head(key)
        return None if head is None else int(head["ContentLength"])

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        name = self._key(key)
        if end is not None and end <= start:
            return
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        s3 = await self._s3()
        try:
            response = await s3.get_object(**request)
        except ClientError as error:
            if _is_missing(error):
                raise FileNotFoundError(key) from error
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return  # start at or past the end: no bytes, as a file read there gives
            raise
        # Leaving the block closes the connection's body, also when the consumer stops early
        # (the generator's aclose() runs it).
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        name = self._key(key)
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=name)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise ValueError(f"refusing to delete the whole store: prefix {prefix!r}")
        name = self._key(prefix.rstrip("/")) + "/"
        s3 = await self._s3()
        removed = 0
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(
            Bucket=self.bucket, Prefix=name, PaginationConfig={"PageSize": DELETE_BATCH}
        ):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if not objects:
                continue
            result = await s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
            if errors := result.get("Errors"):
                first = errors[0]
                raise RuntimeError(
                    f"S3 refused to delete {len(errors)} objects under {name!r}, "
                    f"e.g. {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                )
            removed += len(objects)
        return removed

    async def close(self) -> None:
        async with self._lock:
            if self._stack is not None:
                stack, self._stack, self._client = self._stack, None, None
                await stack.aclose()
