"""What a photo is: its type, displayed size, EXIF capture time and place, and a small thumbnail.

Synchronous and CPU-bound: callers run `inspect_image` in a worker thread. The bytes are
untrusted, so the pixel count is checked from the header before anything is decoded, the image
is then decoded once in full (truncation is an error, not a grey band) and malformed EXIF is
treated as absent rather than raised.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import pillow_heif
from PIL import ExifTags, Image, ImageFile

from app.core.i18n import Text
from app.photos.errors import ImageTooLarge, NotAnImage

pillow_heif.register_heif_opener()

THUMBNAIL_SIDE = 320
THUMBNAIL_QUALITY = 80
# JPEGs decode at the smallest DCT scale (1/2, 1/4, 1/8) that keeps both sides at least this
# big: an 18-megapixel photo needs ~3 MB instead of ~72 MB, and the thumbnail stays sharp.
_DRAFT_SIZE = (2 * THUMBNAIL_SIDE, 2 * THUMBNAIL_SIDE)

# Pillow's format names; a JPEG with several pictures (phones' depth/portrait shots) is "MPO".
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heic",
}
_OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "HEIF"]
NOT_AN_IMAGE = Text("the file is not a JPEG, PNG, WebP or HEIC image")
DAMAGED = Text("the image is damaged or truncated")
# What Pillow and pillow-heif raise on bad image data (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError)

_EXIF_DATE = re.compile(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_WHITE = (255, 255, 255)

# EXIF orientation → the transpose that shows the image upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIDEWAYS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    content_type: str  # "image/jpeg" | "image/png" | "image/webp" | "image/heic"
    width: int  # as displayed: after EXIF orientation
    height: int
    taken_at: datetime | None  # UTC
    lat: float | None  # WGS-84 decimal degrees, south negative
    lon: float | None  # west negative
    thumbnail: bytes  # JPEG, RGB, longest side <= THUMBNAIL_SIDE, upright, no EXIF


# Bytes of memory per decoded pixel, by mode: Pillow keeps RGB in 4 bytes, and the thumbnail
# converts 16-bit grey (to 32-bit, twice) and palette images (to RGB) on the way.
_BYTES_PER_PIXEL = {"1": 5, "L": 1, "P": 5, "LA": 4, "PA": 8, "I": 8, "F": 8}
_SIXTEEN_BIT = 10
# libwebp decodes into a buffer of its own that Pillow then copies.
_FORMAT_FACTOR = {"WEBP": 2}


def decoded_bytes(im: Image.Image) -> int:
    """Memory decoding `im` (at its current, possibly drafted, size) and thumbnailing takes."""
    per_pixel = _SIXTEEN_BIT if im.mode.startswith("I;16") else _BYTES_PER_PIXEL.get(im.mode, 4)
    width, height = im.size
    return width * height * per_pixel * _FORMAT_FACTOR.get(str(im.format), 1)


def inspect_image(
    path: Path,
    *,
    max_pixels: int,
    default_utc_offset: timedelta,
    max_decoded_bytes: int | None = None,
) -> ImageInfo:
    """Check, decode and describe the image at `path`; raise NotAnImage or ImageTooLarge.

    Both limits are checked from the header, before anything is decoded: `max_pixels`, and
    `max_decoded_bytes` of memory the decoding would take (JPEGs decode at reduced size).
    """
    with path.open("rb") as fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise NotAnImage(Text("the file is empty"))
        with _open(fp, max_pixels=max_pixels) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageTooLarge(_too_large(width * height, max_pixels))
            content_type = CONTENT_TYPES.get(str(im.format))
            if content_type is None:
                raise NotAnImage(NOT_AN_IMAGE)
            if im.format in ("JPEG", "MPO"):
                im.draft("RGB", _DRAFT_SIZE)
            if max_decoded_bytes is not None and decoded_bytes(im) > max_decoded_bytes:
                raise ImageTooLarge(
                    Text(
                        "decoding the image would take {needed} bytes of memory; the "
                        "limit is {max_decoded_bytes}",
                        needed=decoded_bytes(im),
                        max_decoded_bytes=max_decoded_bytes,
                    )
                )
            try:
                im.load()
            except _DECODE_ERRORS as exc:
                raise NotAnImage(DAMAGED) from exc
            ifd0, exif_ifd, gps_ifd = _exif(im)
            orientation = _orientation(ifd0)
            taken_at = _taken_at(ifd0, exif_ifd, default_utc_offset)
            lat, lon = _position(gps_ifd)
            thumbnail = _thumbnail(im, orientation)
    if orientation in _SIDEWAYS:
        width, height = height, width
    return ImageInfo(
        content_type=content_type,
        width=width,
        height=height,
        taken_at=taken_at,
        lat=lat,
        lon=lon,
        thumbnail=thumbnail,
    )


def _open(fp: BinaryIO, *, max_pixels: int) -> ImageFile.ImageFile:
    try:
        return Image.open(fp, formats=_OPEN_FORMATS)
    except Image.UnidentifiedImageError as exc:
        raise NotAnImage(NOT_AN_IMAGE) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) runs inside open, before ours can. Its
        # warning only arrives here as an exception when warnings are errors (as under pytest);
        # otherwise it is printed and our own check below refuses the image.
        match = _BOMB_PIXELS.search(str(exc))
        raise ImageTooLarge(_too_large(int(match[1]) if match else None, max_pixels)) from exc
    except _DECODE_ERRORS as exc:
        raise NotAnImage(DAMAGED) from exc


def _too_large(pixels: int | None, max_pixels: int) -> Text:
    if pixels is None:
        return Text(
            "the image has too many pixels; the limit is {max_pixels}", max_pixels=max_pixels
        )
    return Text(
        "the image has {pixels} pixels; the limit is {max_pixels}",
        pixels=pixels,
        max_pixels=max_pixels,
    )


def _thumbnail(im: Image.Image, orientation: int) -> bytes:
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    # Keep an RGB colour profile (Display P3 on iPhones) so the colours stay right; a CMYK or
    # grey one would not fit the RGB thumbnail.
    icc_profile = im.info.get("icc_profile") if im.mode in ("RGB", "RGBA", "P", "PA") else None
    if im.mode.startswith("I"):  # 16-bit greyscale PNG: scale, or convert would clip to white
        im = im.convert("I").point(lambda value: value / 256).convert("L")
    if im.mode not in ("RGB", "RGBA", "L", "LA"):  # P, 1, CMYK…: the modes resize handles badly
        im = im.convert("RGBA" if has_alpha else "RGB")
    # Shrink first, then turn: the box is square, so the result is the same and cheaper.
    im.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    if orientation in _UPRIGHT:
        im = im.transpose(_UPRIGHT[orientation])
    if has_alpha:
        flat = Image.new("RGBA", im.size, _WHITE)
        flat.alpha_composite(im.convert("RGBA"))
        im = flat
    out = BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=THUMBNAIL_QUALITY, icc_profile=icc_profile)
    return out.getvalue()


# EXIF is optional, untrusted metadata. Pillow raises many kinds of exception on malformed
# tags (and warns, which is an exception when warnings are errors), so every read is guarded
# and any failure means "absent".


def _exif(im: Image.Image) -> tuple[Mapping[int, Any], Mapping[int, Any], Mapping[int, Any]]:
    """IFD0, the Exif IFD and the GPS IFD; any that cannot be read is empty."""
    try:
        exif = im.getexif()
    except Exception:
        return {}, {}, {}
    return exif, _sub_ifd(exif, ExifTags.IFD.Exif), _sub_ifd(exif, ExifTags.IFD.GPSInfo)


def _sub_ifd(exif: Image.Exif, tag: int) -> Mapping[int, Any]:
    try:
        return exif.get_ifd(tag)
    except Exception:
        return {}


def _tag(ifd: Mapping[int, Any], tag: int) -> Any:
    try:
        return ifd.get(tag)
    except Exception:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip("\x00 ") if isinstance(value, str) else None


def _orientation(ifd0: Mapping[int, Any]) -> int:
    value = _tag(ifd0, ExifTags.Base.Orientation)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _taken_at(
    ifd0: Mapping[int, Any], exif_ifd: Mapping[int, Any], default_utc_offset: timedelta
) -> datetime | None:
    """DateTimeOriginal with OffsetTimeOriginal, else DateTime with OffsetTime, in UTC."""
    candidates = (
        (_tag(exif_ifd, ExifTags.Base.DateTimeOriginal), ExifTags.Base.OffsetTimeOriginal),
        (_tag(ifd0, ExifTags.Base.DateTime), ExifTags.Base.OffsetTime),
    )
    for stamp, offset_tag in candidates:
        local = _local_time(stamp)
        if local is None:
            continue
        offset = _utc_offset(_tag(exif_ifd, offset_tag))
        try:
            return local.replace(tzinfo=timezone(offset or default_utc_offset)).astimezone(UTC)
        except (OverflowError, ValueError):  # year 1 or 9999 pushed out of range
            continue
    return None


def _local_time(value: Any) -> datetime | None:
    """'YYYY:MM:DD HH:MM:SS' as a naive datetime; None when blank, zero or malformed."""
    match = _EXIF_DATE.fullmatch(_text(value) or "")
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00", February 30th…
        return None


def _utc_offset(value: Any) -> timedelta | None:
    """'+08:00' as a timedelta; None when absent, blank or beyond ±14:00."""
    match = _EXIF_OFFSET.fullmatch(_text(value) or "")
    if match is None:
        return None
    sign, hours, minutes = match[1], int(match[2]), int(match[3])
    if minutes >= 60 or hours * 60 + minutes > 14 * 60:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if sign == "-" else offset


def _position(gps_ifd: Mapping[int, Any]) -> tuple[float | None, float | None]:
    """Latitude and longitude, both or neither: half a position is no position."""
    lat = _coordinate(
        _tag(gps_ifd, ExifTags.GPS.GPSLatitudeRef),
        _tag(gps_ifd, ExifTags.GPS.GPSLatitude),
        hemispheres=("N", "S"),
        limit=90,
    )
    lon = _coordinate(
        _tag(gps_ifd, ExifTags.GPS.GPSLongitudeRef),
        _tag(gps_ifd, ExifTags.GPS.GPSLongitude),
        hemispheres=("E", "W"),
        limit=180,
    )
    if lat is None or lon is None:
        return None, None
    return lat, lon


def _coordinate(ref: Any, value: Any, *, hemispheres: tuple[str, str], limit: int) -> float | None:
    """Degrees, minutes, seconds (three rationals) and a hemisphere letter → signed degrees."""
    hemisphere = (_text(ref) or "").upper()
    if hemisphere not in hemispheres or not isinstance(value, tuple) or len(value) != 3:
        return None
    if not all(isinstance(part, numbers.Real) for part in value):
        return None
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    parts = (degrees, minutes, seconds)
    if not all(math.isfinite(part) and part >= 0 for part in parts):  # n/0 is NaN
        return None
    if minutes >= 60 or seconds >= 60:
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if decimal > limit:
        return None
    return -decimal if hemisphere == hemispheres[1] else decimal
