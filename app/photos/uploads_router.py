"""/uploads: resumable photo uploads, the tus 1.0.0 protocol (https://tus.io)."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, Response

from app.auth.deps import StreamingWriter
from app.core.db import TransactionsDep
from app.core.errors import AppError, problem_responses
from app.core.i18n import Text
from app.photos.deps import SettingsDep, StorageDep
from app.photos.errors import WrongUploadContentType
from app.photos.models import Upload
from app.photos.uploads import (
    CHECKSUM_ALGORITHMS,
    CHUNK_MEDIA_TYPE,
    TUS_EXTENSIONS,
    TUS_VERSION,
    Uploads,
    parse_checksum,
    parse_length,
    parse_metadata,
    parse_offset,
)

router = APIRouter(tags=["uploads"])

UPLOADS_PATH = "/uploads"
UploadId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="From `Location`.")]

_TUS_RESUMABLE = {"description": "tus protocol version: 1.0.0", "schema": {"type": "string"}}
_UPLOAD_OFFSET = {"description": "Bytes the server holds", "schema": {"type": "integer"}}
_UPLOAD_EXPIRES = {
    "description": "When the unfinished upload will be deleted (RFC 9110 HTTP-date)",
    "schema": {"type": "string"},
}
# tus requests carry their own headers; documented so generated clients can send them.


def _tus_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset), "Cache-Control": "no-store"}
    if upload.completed_at is None:
        headers["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
    return headers


def _uploads(
    transactions: TransactionsDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: StreamingWriter,
) -> Uploads:
    return Uploads(transactions, storage, settings, principal)


UploadsDep = Annotated[Uploads, Depends(_uploads)]


@router.options(
    UPLOADS_PATH,
    status_code=204,
    openapi_extra={"security": []},  # public: what the server supports
    responses={
        204: {
            "description": "What the server supports",
            "headers": {
                "Tus-Version": {"schema": {"type": "string"}, "description": "1.0.0"},
                "Tus-Extension": {"schema": {"type": "string"}},
                "Tus-Max-Size": {"schema": {"type": "integer"}},
                "Tus-Checksum-Algorithm": {"schema": {"type": "string"}},
            },
        }
    },
)
async def describe_uploads(settings: SettingsDep) -> Response:
    """tus discovery: versions, extensions, the largest upload and the checksum algorithms."""
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": ",".join(TUS_EXTENSIONS),
            "Tus-Max-Size": str(settings.upload_max_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@router.post(
    UPLOADS_PATH,
    status_code=201,
    response_class=Response,  # the answer is in the headers: no body
    responses={
        201: {
            "description": "Created; `Location` is the upload's URL. With a body "
            "(creation-with-upload), `Upload-Offset` says how much of it was kept.",
            "headers": {
                "Location": {"schema": {"type": "string"}},
                "Upload-Offset": _UPLOAD_OFFSET,
                "Upload-Expires": _UPLOAD_EXPIRES,
                "Tus-Resumable": _TUS_RESUMABLE,
            },
        },
        **problem_responses(
            400,
            401,
            403,
            404,
            412,
            413,
            415,
            422,
            460,
            described={
                400: "Upload-Length missing or malformed, or bad Upload-Metadata encoding",
                404: "The household named is not in the caller's villages",
                412: "Tus-Resumable is not 1.0.0",
                413: "Upload-Length over Tus-Max-Size, or an image over the pixel limit",
                415: "The finished file is not a JPEG, PNG, WebP or HEIC image",
                422: "Upload-Metadata lacks sha256 or names a bad field",
            },
        ),
    },
)
async def create_upload(
    request: Request,
    uploads: UploadsDep,
    upload_length: Annotated[
        str | None, Header(description="Size of the whole file in bytes.")
    ] = None,
    upload_metadata: Annotated[
        str | None,
        Header(
            description="Comma-separated `key base64(value)`: sha256 (required), filename, "
            "filetype, household_id, visit_id, tag.",
        ),
    ] = None,
    upload_checksum: Annotated[
        str | None, Header(description="`<algorithm> <base64 digest>` of a body sent along.")
    ] = None,
    tus_resumable: Annotated[str | None, Header(description="1.0.0")] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """Start a resumable upload of one photo (tus creation, creation-with-upload).

    The caller must be allowed to write the household the photo belongs to: `household_id`,
    or the household of `visit_id`, or that of a record already naming the photo's sha256.
    A photo the server already holds is stored once (the sync feed's `missing_photos` tells a
    phone which of its photos the server lacks).
    """
    length = parse_length(upload_length, limit=uploads.settings.upload_max_bytes)
    metadata = parse_metadata(upload_metadata)
    checksum = parse_checksum(upload_checksum)
    upload = await uploads.create(length=length, metadata=metadata)
    if _is_chunk(content_type) and upload.offset < upload.length:
        try:
            upload = await uploads.append(
                upload, offset=0, chunks=request.stream(), checksum=checksum
            )
        except AppError:
            # The client got no Location: it could neither resume nor delete the upload.
            await uploads.discard(upload)
            raise
    # Relative (RFC 9110 allows it; tus clients resolve it), behind any path prefix.
    location = f"{request.scope.get('root_path', '')}/api/v1{UPLOADS_PATH}/{upload.id}"
    headers = _tus_headers(upload) | {"Location": location}
    return Response(status_code=201, headers=headers)


def _is_chunk(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == CHUNK_MEDIA_TYPE


@router.head(
    UPLOADS_PATH + "/{upload_id}",
    response_class=Response,
    responses={
        200: {
            "description": "Where the upload stands",
            "headers": {
                "Upload-Offset": _UPLOAD_OFFSET,
                "Upload-Length": {"schema": {"type": "integer"}},
                "Upload-Metadata": {"schema": {"type": "string"}},
                "Upload-Expires": _UPLOAD_EXPIRES,
                "Tus-Resumable": _TUS_RESUMABLE,
            },
        },
        **problem_responses(
            401, 403, 404, 412, described={404: "No such upload of the caller's, or expired"}
        ),
    },
)
async def get_upload_offset(
    uploads: UploadsDep,
    upload_id: UploadId,
    tus_resumable: Annotated[str | None, Header(description="1.0.0")] = None,
) -> Response:
    """How many bytes of the upload the server holds: resume the PATCHes from there."""
    upload = await uploads.settle(await uploads.get(upload_id))
    headers = _tus_headers(upload) | {"Upload-Length": str(upload.length)}
    if upload.metadata_header:
        headers["Upload-Metadata"] = upload.metadata_header
    return Response(status_code=200, headers=headers)


@router.patch(
    UPLOADS_PATH + "/{upload_id}",
    status_code=204,
    responses={
        204: {
            "description": "Bytes kept; `Upload-Offset` is the new offset. At the last byte "
            "the whole file was verified and stored.",
            "headers": {
                "Upload-Offset": _UPLOAD_OFFSET,
                "Upload-Expires": _UPLOAD_EXPIRES,
                "Tus-Resumable": _TUS_RESUMABLE,
            },
        },
        **problem_responses(
            400,
            401,
            403,
            404,
            409,
            412,
            413,
            415,
            460,
            described={
                400: "Upload-Offset missing, or an unsupported Upload-Checksum algorithm",
                409: "Upload-Offset is not the upload's offset (`upload_offset` says it)",
                404: "No such upload of the caller's, or it expired unfinished (start anew)",
                413: "The body goes past Upload-Length, or the image has too many pixels",
                415: "Content-Type is not application/offset+octet-stream, or the finished "
                "file is not a supported image",
                460: "The body does not match Upload-Checksum, or the whole file does not "
                "match the sha256 of Upload-Metadata (the upload is discarded)",
            },
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {CHUNK_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def append_upload(
    request: Request,
    uploads: UploadsDep,
    upload_id: UploadId,
    upload_offset: Annotated[str | None, Header(description="Where this body starts.")] = None,
    upload_checksum: Annotated[
        str | None, Header(description="`<algorithm> <base64 digest>` of this body.")
    ] = None,
    tus_resumable: Annotated[str | None, Header(description="1.0.0")] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """Append bytes at `Upload-Offset` (tus core, checksum extension).

    A body cut short by the network keeps what arrived (HEAD tells how much), unless it carried
    `Upload-Checksum`, which then cannot hold.
    """
    if not _is_chunk(content_type):
        raise WrongUploadContentType(
            Text("Content-Type must be {media_type}", media_type=CHUNK_MEDIA_TYPE)
        )
    offset = parse_offset(upload_offset)
    checksum = parse_checksum(upload_checksum)
    upload = await uploads.settle(await uploads.get(upload_id))
    upload = await uploads.append(upload, offset=offset, chunks=request.stream(), checksum=checksum)
    return Response(status_code=204, headers=_tus_headers(upload))


@router.delete(
    UPLOADS_PATH + "/{upload_id}",
    status_code=204,
    responses={
        204: {"description": "Deleted", "headers": {"Tus-Resumable": _TUS_RESUMABLE}},
        **problem_responses(
            401, 403, 404, 412, described={404: "No such upload of the caller's, or expired"}
        ),
    },
)
async def terminate_upload(
    uploads: UploadsDep,
    upload_id: UploadId,
    tus_resumable: Annotated[str | None, Header(description="1.0.0")] = None,
) -> Response:
    """Abandon an upload (tus termination); a finished photo stays stored."""
    upload = await uploads.get(upload_id)
    await uploads.terminate(upload)
    return Response(status_code=204)
