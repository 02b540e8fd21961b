"""The manifest of a backup: what it holds, with the digests that prove it whole."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

MANIFEST = "manifest.json"
MEDIA = "media"
KEYS = "keys"
# The keys a restored server needs: without the PII key, ID numbers can no longer be searched.
KEY_NAMES = ("secret_key", "pii_key")


class BackupError(Exception):
    """The backup or the restore cannot go on; the message says why (and what to do)."""


class StoredObject(BaseModel):
    """An object of the photo store, copied to `media/<key>` of the backup."""

    key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    content_type: str

    @field_validator("key")
    @classmethod
    def _relative(cls, key: str) -> str:
        parts = PurePosixPath(key).parts
        if not key or key.startswith("/") or "\\" in key or any(p in (".", "..") for p in parts):
            raise ValueError(f"not a relative storage key: {key!r}")
        return key


class Manifest(BaseModel):
    """Written last: a backup directory without it is incomplete."""

    format: Literal["fieldsync-backup"] = "fieldsync-backup"
    version: Literal[1] = 1
    created_at: datetime
    database: Literal["sqlite", "postgresql"]
    database_file: str
    database_sha256: str
    database_bytes: int
    alembic_revision: str | None
    # Rows of every table of the snapshot, alembic_version included.
    tables: dict[str, int]
    photos: int
    objects: list[StoredObject]
    # Upload parts the snapshot names whose upload finished or expired before they were copied.
    missing_upload_parts: list[str] = []
    # sha256 of each key, to tell a damaged key file.
    keys: dict[str, str]

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(self.model_dump_json(indent=2), encoding="utf-8")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise BackupError(
                f"{directory} holds no {MANIFEST}: not a backup, or an unfinished one"
            )
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise BackupError(f"{path} is damaged or of another version: {exc}") from None


def file_sha256(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def text_sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
