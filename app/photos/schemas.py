"""What the photo endpoints answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.households.privacy import COARSE_DESCRIPTION, coarse
from app.photos.models import Photo, PhotoRef

_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


class PhotoLocation(BaseModel):
    lat: float = Field(examples=[36.2356])
    lon: float = Field(examples=[115.4712])


class PhotoLinks(BaseModel):
    content: str = Field(description="The original bytes (Range requests supported).")
    thumbnail: str = Field(description="A JPEG at most 320 px on its longer side.")


class PhotoReference(BaseModel):
    """A record that names the photo."""

    record_type: str = Field(examples=["visit"])
    record_id: uuid.UUID
    household_id: uuid.UUID
    tag: str | None = Field(examples=["before"])
    measure_id: uuid.UUID | None = Field(
        description="The support measure the photo documents, if any."
    )


class PhotoPublic(BaseModel):
    """A photo the server holds: what its bytes told, and the records that name it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sha256": _SHA,
                    "size_bytes": 2_874_112,
                    "content_type": "image/jpeg",
                    "width": 4032,
                    "height": 3024,
                    "taken_at": "2026-03-14T01:26:53Z",
                    "location": {"lat": 36.2356, "lon": 115.4712},
                    "stored_at": "2026-03-16T10:02:11Z",
                    "links": {
                        "content": f"/api/v1/photos/{_SHA}/content",
                        "thumbnail": f"/api/v1/photos/{_SHA}/thumbnail",
                    },
                    "references": [
                        {
                            "record_type": "visit",
                            "record_id": "0b6f7a52-5d7e-4d0f-9d8e-1c3c1f1e2a10",
                            "household_id": "6f1c2b0e-8a43-4f7e-9a51-3d2f0c9b7e11",
                            "tag": "before",
                            "measure_id": "5a0e1c9d-7b3f-4e21-8c6d-2f1a0b9e8d77",
                        }
                    ],
                }
            ]
        }
    )

    sha256: str
    size_bytes: int
    content_type: str = Field(description="image/jpeg, image/png, image/webp or image/heic")
    width: int | None
    height: int | None = Field(description="Pixels as displayed (EXIF orientation applied).")
    taken_at: datetime | None = Field(description="Capture time from EXIF, in UTC.")
    location: PhotoLocation | None = Field(
        description="Where it was taken (EXIF GPS, WGS-84). " + COARSE_DESCRIPTION
    )
    stored_at: datetime
    links: PhotoLinks
    references: list[PhotoReference] = Field(
        description="The records of the caller's villages that name this photo."
    )


_HOUSEHOLD_PHOTO_EXAMPLE: dict[str, Any] = {
    "sha256": _SHA,
    "tag": "after",
    "record_type": "measure",
    "record_id": "7c2d9e4f-1a3b-4c5d-8e6f-0a1b2c3d4e5f",
    "measure_id": "7c2d9e4f-1a3b-4c5d-8e6f-0a1b2c3d4e5f",
    "held": True,
    "content_type": "image/jpeg",
    "size_bytes": 284113,
    "width": 1600,
    "height": 1200,
    "taken_at": "2026-11-18T03:12:45Z",
    "thumbnail": f"/api/v1/photos/{_SHA}/thumbnail",
}


class HouseholdPhoto(BaseModel):
    """A photo a record of the household names; `held` says whether its bytes have arrived."""

    model_config = ConfigDict(json_schema_extra={"examples": [_HOUSEHOLD_PHOTO_EXAMPLE]})

    sha256: str = Field(examples=[_SHA])
    tag: str | None = Field(examples=["after"])
    record_type: str = Field(examples=["visit"])
    record_id: uuid.UUID
    measure_id: uuid.UUID | None
    held: bool = Field(description="False while the phone has not uploaded the bytes yet.")
    content_type: str | None = None
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None
    thumbnail: str | None = Field(default=None, description="Link to the thumbnail, when held.")


class MeasurePhotos(BaseModel):
    """The evidence of one support measure: photos before and after, each oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "measure_id": _HOUSEHOLD_PHOTO_EXAMPLE["measure_id"],
                    "title": "危房改造",
                    "before": [],
                    "after": [_HOUSEHOLD_PHOTO_EXAMPLE],
                    "other": [],
                }
            ]
        }
    )

    measure_id: uuid.UUID
    title: str = Field(examples=["危房改造"])
    before: list[HouseholdPhoto]
    after: list[HouseholdPhoto]
    other: list[HouseholdPhoto] = Field(description="Other photos naming the measure.")


def links_of(sha256: str) -> PhotoLinks:
    return PhotoLinks(
        content=f"/api/v1/photos/{sha256}/content",
        thumbnail=f"/api/v1/photos/{sha256}/thumbnail",
    )


def photo_public(photo: Photo, references: list[PhotoRef], *, reveal_pii: bool) -> PhotoPublic:
    """The photo as a caller sees it: without `reveal_pii`, its position coarsened."""
    location = None
    if photo.lat is not None and photo.lon is not None:
        location = (
            PhotoLocation(lat=photo.lat, lon=photo.lon)
            if reveal_pii
            else PhotoLocation(lat=coarse(photo.lat), lon=coarse(photo.lon))
        )
    return PhotoPublic(
        sha256=photo.sha256,
        size_bytes=photo.size_bytes,
        content_type=photo.content_type,
        width=photo.width,
        height=photo.height,
        taken_at=photo.taken_at,
        location=location,
        stored_at=photo.stored_at,
        links=links_of(photo.sha256),
        references=[
            PhotoReference(
                record_type=ref.record_type,
                record_id=ref.record_id,
                household_id=ref.household_id,
                tag=ref.tag,
                measure_id=ref.measure_id,
            )
            for ref in references
        ],
    )


def household_photo(ref: PhotoRef, photo: Photo | None) -> HouseholdPhoto:
    item = HouseholdPhoto(
        sha256=ref.sha256,
        tag=ref.tag,
        record_type=ref.record_type,
        record_id=ref.record_id,
        measure_id=ref.measure_id,
        held=photo is not None,
    )
    if photo is not None:
        item.content_type = photo.content_type
        item.size_bytes = photo.size_bytes
        item.width = photo.width
        item.height = photo.height
        item.taken_at = photo.taken_at
        item.thumbnail = links_of(photo.sha256).thumbnail
    return item
