"""/photos: store, describe and serve photos; a household's and a measure's photos."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from app.auth.deps import PhotosReader, StreamingWriter
from app.core.config import Settings
from app.core.db import SessionDep, Transactions, TransactionsDep
from app.core.errors import InsufficientScope, InvalidInput, problem_responses
from app.core.i18n import Text
from app.core.pagination import Page, PageDep
from app.households.privacy import scrub
from app.photos import service
from app.photos import storage as keys
from app.photos.deps import SettingsDep, StorageDep
from app.photos.errors import PhotoNotFound, RangeNotSatisfiable
from app.photos.models import Photo
from app.photos.schemas import (
    HouseholdPhoto,
    MeasurePhotos,
    PhotoPublic,
    household_photo,
    photo_public,
)
from app.photos.spool import spool, spool_dir
from app.photos.storage import Storage
from app.records.vocabulary import PhotoTag

router = APIRouter(tags=["photos"])

Sha256Path = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the photo file, 64 lowercase hex digits.",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    ),
]


@router.put(
    "/photos/{sha256}",
    response_model=PhotoPublic,
    status_code=201,
    responses={
        200: {"model": PhotoPublic, "description": "Already held: nothing changed"},
        **problem_responses(
            401,
            403,
            404,
            413,
            415,
            422,
            described={
                404: "The household named is not in the caller's villages",
                413: "Body over the size limit, or an image over the pixel limit",
                415: "Not a JPEG, PNG, WebP or HEIC image, or a damaged one",
                422: "The body's sha256 differs from the path, or no household is known",
            },
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_photo(
    request: Request,
    transactions: TransactionsDep,
    storage: StorageDep,
    settings: SettingsDep,
    principal: StreamingWriter,
    sha256: Sha256Path,
    household_id: Annotated[
        uuid.UUID | None,
        Query(description="The household it belongs to; default: that of a record naming it."),
    ] = None,
) -> Any:
    """Store a small photo in one request (the raw bytes as the body); repeating it is a no-op.

    The body's sha256 must equal the path.
    """
    async with transactions(writing=False) as session:
        target = await service.household_for_photo(
            session,
            principal=principal,
            sha256=sha256,
            household_id=household_id,
            visit_id=None,
            field_prefix="query.",
        )
        held = await session.get(Photo, sha256)
        visible = held is not None and await service.may_read(
            session, principal=principal, sha256=sha256
        )
    if not visible:
        # New bytes, or bytes held for a household the caller cannot see: the caller proves
        # they have the photo by sending it (nothing is stored twice).
        await _receive_photo(
            request,
            transactions,
            storage,
            settings,
            sha256=sha256,
            household_id=target,
            uploaded_by=principal.id,
            store=held is None,
        )
    async with transactions(writing=False) as session:
        photo = await session.get(Photo, sha256)
        assert photo is not None
        references = await service.references_of(session, principal=principal, sha256=sha256)
    reveal = service.may_see_position(principal)
    body = photo_public(photo, references, reveal_pii=reveal).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=200 if held is not None else 201,
        headers={"Location": f"/api/v1/photos/{sha256}"},
    )


async def _receive_photo(
    request: Request,
    transactions: Transactions,
    storage: Storage,
    settings: Settings,
    *,
    sha256: str,
    household_id: uuid.UUID,
    uploaded_by: uuid.UUID,
    store: bool,
) -> None:
    """Read the body, check it is the photo `sha256` names, and store it if `store`."""
    received = await spool(
        request.stream(), spool_dir(settings.data_dir), limit=settings.upload_max_bytes
    )
    try:
        if received.cut_short:
            raise InvalidInput.field("body", Text("the body was cut short"), type="incomplete")
        if received.hexdigest("sha256") != sha256:
            raise InvalidInput.field(
                "body",
                Text(
                    "the body's sha256 is {value}, not the {sha256} of the path; "
                    "nothing was stored",
                    value=received.hexdigest("sha256"),
                    sha256=sha256,
                ),
                type="sha256_mismatch",
            )
        if not store:
            async with transactions(writing=True) as session:
                await service.add_holder(
                    session, sha256=sha256, household_id=household_id, user_id=uploaded_by
                )
        else:
            info = await service.inspect(settings, received.path)
            await service.store_photo(
                transactions,
                storage,
                settings,
                sha256=sha256,
                path=received.path,
                info=info,
                size=received.size,
                household_id=household_id,
                uploaded_by=uploaded_by,
            )
    finally:
        await received.discard()


@router.get(
    "/photos/{sha256}",
    response_model=PhotoPublic,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_photo(
    session: SessionDep, principal: PhotosReader, sha256: Sha256Path
) -> PhotoPublic:
    """A photo's size, type, dimensions, capture time and place, and the records naming it."""
    photo = await service.get_photo(session, principal=principal, sha256=sha256)
    references = await service.references_of(session, principal=principal, sha256=sha256)
    return photo_public(photo, references, reveal_pii=service.may_see_position(principal))


_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/photos/{sha256}/content",
    response_class=Response,
    responses={
        200: {"description": "The original bytes", "content": {"image/*": _BINARY}},
        206: {"description": "The requested byte range", "content": {"image/*": _BINARY}},
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(401, 403, 404, 416, 422),
    },
)
async def get_photo_content(
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    principal: PhotosReader,
    sha256: Sha256Path,
) -> Response:
    """The original bytes; `Range: bytes=…` resumes a download, `If-None-Match` revalidates
    (the content never changes: its ETag is its sha256).

    The original carries the EXIF position where it was taken: it needs `pii:read` (403
    `insufficient_scope` otherwise). The thumbnail carries no metadata.
    """
    photo = await service.get_photo(session, principal=principal, sha256=sha256)
    if not service.may_see_position(principal):
        raise InsufficientScope(
            Text(
                "the original photo carries the exact position where it was "
                "taken: it needs pii:read (the thumbnail has no metadata)"
            ),
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="pii:read"'},
        )
    return await _serve(
        request,
        storage,
        key=keys.original_key(sha256),
        etag=f'"{sha256}"',
        media_type=photo.content_type,
        size=photo.size_bytes,
    )


@router.get(
    "/photos/{sha256}/thumbnail",
    response_class=Response,
    responses={
        200: {
            "description": "A JPEG at most 320 px wide and high",
            "content": {"image/jpeg": _BINARY},
        },
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(401, 403, 404, 422),
    },
)
async def get_photo_thumbnail(
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    principal: PhotosReader,
    sha256: Sha256Path,
) -> Response:
    """A small JPEG of the photo (at most 320 px), for lists on a phone."""
    await service.get_photo(session, principal=principal, sha256=sha256)
    key = keys.thumbnail_key(sha256)
    size = await storage.size(key)
    if size is None:
        raise PhotoNotFound(Text("photo {sha256} has no thumbnail", sha256=sha256))
    return await _serve(
        request, storage, key=key, etag=f'"{sha256}-320"', media_type="image/jpeg", size=size
    )


_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a single-range `Range` header; None to send everything."""
    match = _RANGE.match((header or "").strip())
    if match is None:
        return None  # absent, or several ranges: RFC 9110 lets a server send the whole
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        if last and int(last) < start:
            return None  # invalid: RFC 9110 says to ignore the header
        end = min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        raise RangeNotSatisfiable(
            Text("the content has {size} bytes", size=size),
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


async def _serve(
    request: Request, storage: Storage, *, key: str, etag: str, media_type: str, size: int
) -> Response:
    headers = {
        "ETag": etag,
        # Private: a shared cache must not hand it to a caller who may not see it.
        "Cache-Control": "private, max-age=31536000, immutable",
        "Accept-Ranges": "bytes",
    }
    # If-None-Match compares weakly, and `*` matches any content (RFC 9110 13.1.2).
    tags = [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]
    if "*" in tags or etag in [tag.removeprefix("W/") for tag in tags]:
        return Response(status_code=304, headers=headers)
    if_range = request.headers.get("if-range")
    span = _byte_range(request.headers.get("range"), size)
    if span is None or (if_range is not None and if_range.strip() != etag):
        return StreamingResponse(
            storage.read(key),
            media_type=media_type,
            headers=headers | {"Content-Length": str(size)},
        )
    start, end = span
    return StreamingResponse(
        storage.read(key, start, end),
        status_code=206,
        media_type=media_type,
        headers=headers
        | {"Content-Length": str(end - start), "Content-Range": f"bytes {start}-{end - 1}/{size}"},
    )


@router.get(
    "/households/{household_id}/photos",
    response_model=Page[HouseholdPhoto],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_household_photos(
    session: SessionDep,
    principal: PhotosReader,
    page: PageDep,
    household_id: uuid.UUID,
    tag: Annotated[PhotoTag | None, Query(description="Only photos with this tag.")] = None,
) -> Page[HouseholdPhoto]:
    """The photos the household's records name, held or still to come from the phone."""
    rows, cursor = await service.household_photos(
        session,
        principal=principal,
        household_id=household_id,
        tag=tag.value if tag else None,
        page=page,
    )
    return Page(items=[household_photo(ref, photo) for ref, photo in rows], next_cursor=cursor)


@router.get(
    "/measures/{measure_id}/photos",
    response_model=MeasurePhotos,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_measure_photos(
    session: SessionDep, principal: PhotosReader, measure_id: uuid.UUID
) -> MeasurePhotos:
    """A support measure's before/after evidence: every photo naming the measure, by tag."""
    measure, rows = await service.measure_photos(
        session, principal=principal, measure_id=measure_id
    )
    groups: dict[str, list[HouseholdPhoto]] = {"before": [], "after": [], "other": []}
    for ref, photo in rows:
        group = ref.tag if ref.tag in ("before", "after") else "other"
        groups[group].append(household_photo(ref, photo))
    title = measure.title
    if "pii:read" not in principal.scopes:  # the measure is of the caller's villages
        title = scrub(title)
    return MeasurePhotos(measure_id=measure.id, title=title, **groups)
