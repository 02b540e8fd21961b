"""Resumable uploads (tus 1.0.0): creation, appending at an offset, finishing, expiry.

An upload's bytes so far are parts in the staging area of the photo store, one per PATCH, so
that any API instance can continue an upload another one started. No transaction is open
while bytes arrive (minutes, on 2G): a part is written first, then a short transaction moves
the offset with compare-and-set, so of two PATCHes racing at one offset exactly one counts.
When the last byte arrives the parts are joined into one file, checked against the sha256 the
client announced and against the image rules, and stored under that sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, update
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.config import Settings
from app.core.db import Transactions
from app.core.errors import AppError, InvalidInput
from app.core.i18n import Text
from app.photos import service
from app.photos import storage as keys
from app.photos.errors import (
    ChecksumMismatch,
    InvalidHeader,
    OffsetMismatch,
    TooManyParts,
    TooManyUploads,
    UnsupportedChecksum,
    UploadExpired,
    UploadFinishing,
    UploadNotFound,
    UploadTooLarge,
)
from app.photos.models import Upload, UploadPart
from app.photos.spool import Spooled, spool, spool_dir
from app.photos.storage import Storage
from app.records.vocabulary import PhotoTag

log = logging.getLogger("fieldsync.uploads")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation", "creation-with-upload", "termination", "checksum", "expiration")
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
CHUNK_MEDIA_TYPE = "application/offset+octet-stream"

# tus: keys are ASCII, without spaces and commas.
_METADATA_KEY = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")
# ASCII digits only (str.isdigit takes "²"), and no more than a BIGINT holds.
_NUMBER = re.compile(r"^[0-9]{1,18}$")
# Claimed by a request finishing an upload for at most this long (then others may retry).
FINISHING_CLAIM = timedelta(minutes=10)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class UploadMetadata:
    """What `Upload-Metadata` says about the file."""

    raw: str
    sha256: str
    filename: str | None = None
    filetype: str | None = None
    household_id: uuid.UUID | None = None
    visit_id: uuid.UUID | None = None
    tag: str | None = None


def parse_metadata(header: str | None) -> UploadMetadata:
    """Parse tus `Upload-Metadata`: comma-separated `key base64value` pairs (value optional)."""
    raw = (header or "").strip()
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, _, encoded = item.partition(" ")
        if not _METADATA_KEY.match(key) or key in pairs:
            raise InvalidHeader.of(
                "Upload-Metadata", Text("bad or repeated key {key!r}", key=key[:40])
            )
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # ValueError: non-ASCII input, bad UTF-8
            raise InvalidHeader.of(
                "Upload-Metadata", Text("the value of {key!r} is not base64 of UTF-8 text", key=key)
            ) from None

    def named(key: str, message: Text) -> InvalidInput:
        return InvalidInput.field(f"metadata.{key}", message)

    sha256 = pairs.get("sha256", "").strip().lower()
    if not sha256:
        raise InvalidInput.field(
            "metadata.sha256", Text("the sha256 of the whole file is required"), type="missing"
        )
    if not _SHA256.match(sha256):
        raise named("sha256", Text("must be 64 hexadecimal digits"))
    ids: dict[str, uuid.UUID | None] = {}
    for key in ("household_id", "visit_id"):
        value = pairs.get(key, "").strip()
        try:
            ids[key] = uuid.UUID(value) if value else None
        except ValueError:
            raise named(key, Text("must be a UUID")) from None
    tag = pairs.get("tag", "").strip() or None
    if tag is not None and tag not in PhotoTag.__members__:
        raise named("tag", Text("must be one of {tags}", tags=", ".join(PhotoTag.__members__)))
    filename = pairs.get("filename") or None
    filetype = pairs.get("filetype") or None
    if filename is not None and len(filename) > 255:
        raise named("filename", Text("at most {most} characters", most=255))
    if filetype is not None and len(filetype) > 100:
        raise named("filetype", Text("at most {most} characters", most=100))
    return UploadMetadata(
        raw=raw,
        sha256=sha256,
        filename=filename,
        filetype=filetype,
        household_id=ids["household_id"],
        visit_id=ids["visit_id"],
        tag=tag,
    )


def parse_length(header: str | None, *, limit: int) -> int:
    if header is None:
        raise InvalidHeader.of(
            "Upload-Length", Text("required (deferred lengths are not supported)")
        )
    if not _NUMBER.match(header.strip()):
        raise InvalidHeader.of("Upload-Length", Text("must be a non-negative integer"))
    length = int(header)
    if length > limit:
        raise UploadTooLarge(
            Text("the file has {length} bytes; the limit is {limit}", length=length, limit=limit),
            limit_bytes=limit,
        )
    return length


def parse_offset(header: str | None) -> int:
    if header is None or not _NUMBER.match(header.strip()):
        raise InvalidHeader.of("Upload-Offset", Text("required, a non-negative integer"))
    return int(header)


def parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    """tus `Upload-Checksum: <algorithm> <base64 digest>` of this request's body."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() not in CHECKSUM_ALGORITHMS:
        raise UnsupportedChecksum(
            Text(
                "Upload-Checksum: {algorithm!r} is not supported; use one of {algorithms}",
                algorithm=algorithm[:20],
                algorithms=", ".join(CHECKSUM_ALGORITHMS),
            )
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidHeader.of("Upload-Checksum", Text("the digest is not base64")) from None
    if len(digest) != hashlib.new(algorithm.lower()).digest_size:
        raise InvalidHeader.of(
            "Upload-Checksum", Text("not a {value} digest", value=algorithm.lower())
        )
    return algorithm.lower(), digest


class Uploads:
    """The uploads of one caller, with the store and settings they need."""

    def __init__(
        self,
        transactions: Transactions,
        storage: Storage,
        settings: Settings,
        principal: Principal,
    ) -> None:
        self.transactions = transactions
        self.storage = storage
        self.settings = settings
        self.principal = principal

    @property
    def expiry(self) -> timedelta:
        return timedelta(days=self.settings.upload_expiry_days)

    async def create(self, *, length: int, metadata: UploadMetadata) -> Upload:
        """A new upload for a household the caller may write.

        Even when the server already holds the photo the upload starts at offset 0: standard
        tus clients PATCH from 0 after creating, whatever the answer says. Phones learn what
        the server lacks from the sync feed's `missing_photos` and upload only those.
        """
        now = utcnow()
        async with self.transactions(writing=True) as session:
            unfinished = await session.scalar(
                select(func.count())
                .select_from(Upload)
                .where(
                    Upload.user_id == self.principal.id,
                    col(Upload.completed_at).is_(None),
                    Upload.expires_at > now,
                )
            )
            if (unfinished or 0) >= self.settings.upload_max_unfinished:
                raise TooManyUploads(
                    Text(
                        "you have {unfinished} unfinished uploads: finish or delete some "
                        "(DELETE their URL) before starting more",
                        unfinished=unfinished,
                    ),
                    headers={"Retry-After": "3600"},
                )
            household_id = await service.household_for_photo(
                session,
                principal=self.principal,
                sha256=metadata.sha256,
                household_id=metadata.household_id,
                visit_id=metadata.visit_id,
                field_prefix="metadata.",
            )
            upload = Upload(
                id=uuid.uuid4().hex,
                user_id=self.principal.id,
                household_id=household_id,
                sha256=metadata.sha256,
                length=length,
                offset=0,
                metadata_header=metadata.raw,
                filename=metadata.filename,
                filetype=metadata.filetype,
                visit_id=metadata.visit_id,
                tag=metadata.tag,
                created_at=now,
                expires_at=now + self.expiry,
            )
            session.add(upload)
        if length == 0:
            await self._finish(upload)  # nothing will come: refused (no image is empty)
        return upload

    async def get(self, upload_id: str) -> Upload:
        """The caller's upload, else UploadNotFound; UploadExpired once it expired unfinished."""
        async with self.transactions(writing=False) as session:
            upload = await session.scalar(
                select(Upload).where(Upload.id == upload_id, Upload.user_id == self.principal.id)
            )
        if upload is None:
            raise UploadNotFound(
                Text(
                    "upload {upload_id} does not exist (or was finished long ago)",
                    upload_id=upload_id,
                )
            )
        if upload.completed_at is None and upload.expires_at <= utcnow():
            raise UploadExpired(
                Text("upload {upload_id} expired unfinished: start a new one", upload_id=upload_id)
            )
        return upload

    async def settle(self, upload: Upload) -> Upload:
        """Finish an upload whose last byte arrived but whose finishing was cut off (a crash),
        before telling the phone it is complete."""
        if upload.offset == upload.length and upload.completed_at is None:
            await self._finish(upload)
        return upload

    async def append(
        self,
        upload: Upload,
        *,
        offset: int,
        chunks: AsyncIterator[bytes],
        checksum: tuple[str, bytes] | None,
    ) -> Upload:
        """Append the body at `offset`; the caller learns the new offset from the result.

        What arrived of a body cut short by the network is kept (the phone resumes from there),
        unless the body carried a checksum, which then cannot be verified.
        """
        if offset != upload.offset:
            raise OffsetMismatch(
                Text(
                    "the upload is at offset {upload_offset}, not {offset}: resume from there",
                    upload_offset=upload.offset,
                    offset=offset,
                ),
                upload_offset=upload.offset,
            )
        if upload.parts >= self.settings.upload_max_parts and offset < upload.length:
            raise TooManyParts(
                Text(
                    "the upload is already in {upload_parts} parts: delete it and "
                    "upload the photo again in larger chunks",
                    upload_parts=upload.parts,
                )
            )
        algorithms = ("sha256",) if checksum is None else ("sha256", checksum[0])
        received = await spool(
            chunks,
            spool_dir(self.settings.data_dir),
            limit=upload.length - offset,
            algorithms=algorithms,
        )
        try:
            self._check_received(received, upload=upload, checksum=checksum)
            if received.size == 0:
                return upload
            key = f"{keys.staging_prefix(upload.id)}{offset:016d}-{uuid.uuid4().hex[:8]}"
            await self.storage.put_file(key, received.path, content_type=CHUNK_MEDIA_TYPE)
        finally:
            await received.discard()
        upload = await self._advance(upload, offset=offset, size=received.size, key=key)
        if upload.offset == upload.length:
            await self._finish(upload, claimed=True)
        return upload

    def _check_received(
        self, received: Spooled, *, upload: Upload, checksum: tuple[str, bytes] | None
    ) -> None:
        if received.too_long:
            raise UploadTooLarge(
                Text(
                    "the body goes past Upload-Length ({upload_length} bytes); nothing was kept",
                    upload_length=upload.length,
                ),
                limit_bytes=upload.length,
            )
        if checksum is not None:
            algorithm, expected = checksum
            if received.cut_short:
                raise ChecksumMismatch(
                    Text(
                        "the body was cut short, so its Upload-Checksum cannot hold; "
                        "nothing was kept"
                    )
                )
            if received.digest(algorithm) != expected:
                raise ChecksumMismatch(
                    Text(
                        "the body does not match its Upload-Checksum ({algorithm}); "
                        "nothing was kept: send it again",
                        algorithm=algorithm,
                    )
                )

    async def _advance(self, upload: Upload, *, offset: int, size: int, key: str) -> Upload:
        """Move the offset past the new part, if no other request moved it first; the request
        that moves it to the end claims the finishing in the same statement."""
        now = utcnow()
        last = offset + size == upload.length
        async with self.transactions(writing=True) as session:
            moved = await session.execute(
                update(Upload)
                .where(col(Upload.id) == upload.id, col(Upload.offset) == offset)
                .values(
                    offset=offset + size,
                    parts=col(Upload.parts) + 1,
                    expires_at=now + self.expiry,
                    finishing_until=now + FINISHING_CLAIM if last else None,
                )
            )
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                session.add(UploadPart(upload_id=upload.id, start=offset, size=size, key=key))
                refreshed = await session.get(Upload, upload.id, populate_existing=True)
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            await self.storage.delete(key)
            current = await self.get(upload.id)
            raise OffsetMismatch(
                Text(
                    "another request moved the upload to offset {current_offset}: "
                    "resume from there",
                    current_offset=current.offset,
                ),
                upload_offset=current.offset,
            )
        assert refreshed is not None
        return refreshed

    async def _finish(self, upload: Upload, *, claimed: bool = False) -> None:
        await finish_upload(self.transactions, self.storage, self.settings, upload, claimed=claimed)

    async def discard(self, upload: Upload) -> None:
        await discard_upload(self.transactions, self.storage, upload)

    async def terminate(self, upload: Upload) -> None:
        """tus termination; not while a request is finishing the upload (409)."""
        claim = upload.finishing_until
        if upload.completed_at is None and claim is not None and claim > utcnow():
            raise UploadFinishing(
                Text("upload {upload_id} is being finished: ask again shortly", upload_id=upload.id)
            )
        await self.discard(upload)


async def _claim(transactions: Transactions, upload: Upload, *, now: datetime) -> bool:
    """Claim a complete, unfinished upload for finishing; False if another request has it."""
    async with transactions(writing=True) as session:
        claimed = await session.execute(
            update(Upload)
            .where(
                col(Upload.id) == upload.id,
                col(Upload.completed_at).is_(None),
                col(Upload.offset) == col(Upload.length),
                or_(
                    col(Upload.finishing_until).is_(None),
                    col(Upload.finishing_until) <= now,
                ),
            )
            .values(finishing_until=now + FINISHING_CLAIM)
        )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


async def finish_upload(
    transactions: Transactions,
    storage: Storage,
    settings: Settings,
    upload: Upload,
    *,
    claimed: bool = False,
) -> bool:
    """Join the parts, verify the whole file and store it as a photo; on any refusal the
    upload is discarded (the phone must send a correct file as a new upload).

    Only one request finishes an upload at a time (a claim on its row): the last PATCH, a HEAD
    after a crash, or the periodic sweep. False if another one has it in hand. `claimed`: the
    caller already holds the claim (the PATCH that moved the offset to the end).
    """
    if not claimed and not await _claim(transactions, upload, now=utcnow()):
        return False
    async with transactions(writing=False) as session:
        parts = list(
            await session.scalars(
                select(UploadPart)
                .where(UploadPart.upload_id == upload.id)
                .order_by(col(UploadPart.start))
            )
        )
    joined = await spool(
        _read_parts(storage, parts), spool_dir(settings.data_dir), limit=upload.length
    )
    try:
        if joined.size != upload.length:
            raise RuntimeError(f"upload {upload.id}: parts hold {joined.size} bytes")
        try:
            if joined.hexdigest("sha256") != upload.sha256:
                raise ChecksumMismatch(
                    Text(
                        "the file's sha256 is {value}, but Upload-Metadata says "
                        "{upload_sha256}: the upload was discarded; upload the photo "
                        "again",
                        value=joined.hexdigest("sha256"),
                        upload_sha256=upload.sha256,
                    ),
                    sha256=joined.hexdigest("sha256"),
                )
            info = await service.inspect(settings, joined.path)
        except AppError:
            await discard_upload(transactions, storage, upload)
            raise
        await service.store_photo(
            transactions,
            storage,
            settings,
            sha256=upload.sha256,
            path=joined.path,
            info=info,
            size=joined.size,
            household_id=upload.household_id,
            uploaded_by=upload.user_id,
        )
    finally:
        await joined.discard()
    now = utcnow()
    async with transactions(writing=True) as session:
        await session.execute(
            update(Upload)
            .where(col(Upload.id) == upload.id)
            .values(
                completed_at=now,
                finishing_until=None,
                expires_at=now + timedelta(days=settings.upload_expiry_days),
            )
        )
        await session.execute(delete(UploadPart).where(col(UploadPart.upload_id) == upload.id))
    upload.completed_at = now
    await storage.delete_prefix(keys.staging_prefix(upload.id))
    return True


async def _read_parts(storage: Storage, parts: list[UploadPart]) -> AsyncIterator[bytes]:
    position = 0
    for part in parts:
        if part.start != position:
            raise RuntimeError(f"upload {part.upload_id}: no part at offset {position}")
        async for block in storage.read(part.key):
            yield block
        position += part.size


async def discard_upload(
    transactions: Transactions,
    storage: Storage,
    upload: Upload,
    *,
    expired_by: datetime | None = None,
) -> bool:
    """Delete the upload and its parts (termination, refusal); with `expired_by`, only if it
    is still expired then and nobody is finishing it. Whether it was deleted."""
    condition = col(Upload.id) == upload.id
    if expired_by is not None:
        condition = and_(
            condition,
            col(Upload.expires_at) <= expired_by,
            or_(
                col(Upload.completed_at).is_not(None),
                col(Upload.finishing_until).is_(None),
                col(Upload.finishing_until) <= expired_by,
            ),
        )
    async with transactions(writing=True) as session:
        doomed = select(Upload.id).where(condition).scalar_subquery()
        await session.execute(delete(UploadPart).where(col(UploadPart.upload_id) == doomed))
        deleted = await session.execute(delete(Upload).where(condition))
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await storage.delete_prefix(keys.staging_prefix(upload.id))
    return True


async def expire_uploads(
    transactions: Transactions, storage: Storage, settings: Settings, *, now: datetime | None = None
) -> tuple[int, int]:
    """Delete unfinished uploads past their expiry and finished ones past their retention;
    finish uploads whose last byte arrived but whose finishing was cut off (a crash).

    Safe to run in several processes at once. One upload that fails is logged and skipped:
    it never holds up the others. Returns (deleted, finished).
    """
    now = now or utcnow()
    idle_since = now + timedelta(days=settings.upload_expiry_days) - timedelta(minutes=1)
    async with transactions(writing=False) as session:
        expired = list(await session.scalars(select(Upload).where(Upload.expires_at <= now)))
        # Complete but unfinished, and idle for a minute: the request that should have
        # finished it died.
        stranded = list(
            await session.scalars(
                select(Upload).where(
                    Upload.offset == Upload.length,
                    col(Upload.completed_at).is_(None),
                    Upload.expires_at <= idle_since,
                    Upload.expires_at > now,
                )
            )
        )
    finished = deleted = 0
    for upload in stranded:
        try:
            finished += await finish_upload(transactions, storage, settings, upload)
        except AppError as refused:
            log.info("stranded upload %s refused: %s", upload.id, refused.code)
        except Exception:
            log.exception("stranded upload %s could not be finished; retried later", upload.id)
    for upload in expired:
        try:
            deleted += await discard_upload(transactions, storage, upload, expired_by=now)
        except Exception:
            log.exception("expired upload %s could not be deleted; retried later", upload.id)
    return deleted, finished
