"""The photo and upload endpoints' problem types."""

from __future__ import annotations

from app.core.errors import AppError, Conflict, FieldError, NotFound
from app.core.i18n import Text


class PhotoNotFound(NotFound):
    code = "photo_not_found"
    title = "Photo not found"


class UploadNotFound(NotFound):
    code = "upload_not_found"
    title = "Upload not found"


class UploadExpired(NotFound):
    """404, not 410: tus-android-client starts a new upload only when HEAD answers 404."""

    code = "upload_expired"
    title = "Upload expired"


class UploadFinishing(Conflict):
    code = "upload_finishing"
    title = "Upload being finished"


class TooManyUploads(AppError):
    status = 429
    code = "too_many_uploads"
    title = "Too many unfinished uploads"
    retryable = True


class TooManyParts(AppError):
    status = 413
    code = "too_many_parts"
    title = "Upload in too many parts"


class RangeNotSatisfiable(AppError):
    status = 416
    code = "range_not_satisfiable"
    title = "Range not satisfiable"


class InvalidHeader(AppError):
    """A tus request header is missing or malformed."""

    status = 400
    code = "invalid_header"
    title = "Invalid header"

    @classmethod
    def of(cls, header: str, message: Text, *, type: str = "invalid") -> InvalidHeader:
        return cls(
            Text("{header}: {message}", header=header, message=message),
            errors=[FieldError.of(f"header.{header}", message, type=type)],
        )


class OffsetMismatch(Conflict):
    """tus: the PATCH's Upload-Offset is not where the upload stands (HEAD tells where)."""

    code = "offset_mismatch"
    title = "Upload-Offset mismatch"


class UploadTooLarge(AppError):
    status = 413
    code = "upload_too_large"
    title = "Upload too large"


class ChecksumMismatch(AppError):
    """tus checksum extension: 460 Checksum Mismatch (a chunk's, or the whole file's sha256)."""

    status = 460
    code = "checksum_mismatch"
    title = "Checksum mismatch"


class UnsupportedChecksum(AppError):
    status = 400
    code = "unsupported_checksum_algorithm"
    title = "Unsupported checksum algorithm"


class TusVersionUnsupported(AppError):
    status = 412
    code = "tus_version_unsupported"
    title = "Unsupported tus version"


class WrongUploadContentType(AppError):
    status = 415
    code = "wrong_content_type"
    title = "Wrong content type"


class NotAnImage(AppError):
    """The bytes are not a JPEG, PNG, WebP or HEIC image, or are damaged or truncated."""

    status = 415
    code = "not_an_image"
    title = "Not a supported image"


class ImageTooLarge(AppError):
    """More pixels than the limit (a decompression bomb), found from the header alone."""

    status = 413
    code = "image_too_large"
    title = "Image too large"
