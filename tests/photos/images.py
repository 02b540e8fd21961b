"""Image bytes for photo tests, made with Pillow in memory: each format, EXIF, bombs, junk."""

from __future__ import annotations

import random
import struct
import zlib
from fractions import Fraction
from io import BytesIO

import pillow_heif
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

pillow_heif.register_heif_opener()

Color = tuple[int, int, int]
ORANGE: Color = (200, 80, 40)


def image_bytes(
    fmt: str,
    width: int = 64,
    height: int = 48,
    *,
    exif: Image.Exif | None = None,
    color: Color = ORANGE,
) -> bytes:
    """A plain `color` image of `fmt` (a Pillow format name), with `exif` if given."""
    out = BytesIO()
    # As bytes: Pillow's PNG writer drops an Image.Exif whose IFD0 is empty (it is falsy).
    options = {"exif": exif.tobytes()} if exif is not None else {}
    Image.new("RGB", (width, height), color).save(out, fmt, **options)
    return out.getvalue()


def jpeg_bytes(
    width: int = 64, height: int = 48, *, exif: Image.Exif | None = None, color: Color = ORANGE
) -> bytes:
    return image_bytes("JPEG", width, height, exif=exif, color=color)


def png_bytes(
    width: int = 64, height: int = 48, *, exif: Image.Exif | None = None, color: Color = ORANGE
) -> bytes:
    return image_bytes("PNG", width, height, exif=exif, color=color)


def webp_bytes(
    width: int = 64, height: int = 48, *, exif: Image.Exif | None = None, color: Color = ORANGE
) -> bytes:
    return image_bytes("WEBP", width, height, exif=exif, color=color)


def heic_bytes(
    width: int = 64, height: int = 48, *, exif: Image.Exif | None = None, color: Color = ORANGE
) -> bytes:
    return image_bytes("HEIF", width, height, exif=exif, color=color)


def exif_with(
    taken: str | None = "2026:03:14 09:26:53",
    offset: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    orientation: int | None = None,
) -> Image.Exif:
    """EXIF as a phone writes it: DateTimeOriginal (+ OffsetTimeOriginal), GPS, Orientation."""
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if taken is not None or offset is not None:
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
        if taken is not None:
            exif_ifd[ExifTags.Base.DateTimeOriginal] = taken
        if offset is not None:
            exif_ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    if lat is not None or lon is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if lat is not None:
            gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
            gps[ExifTags.GPS.GPSLatitude] = dms(abs(lat))
        if lon is not None:
            gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
            gps[ExifTags.GPS.GPSLongitude] = dms(abs(lon))
    return exif


def dms(degrees: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Unsigned decimal degrees as EXIF's degrees, minutes, seconds (1/10000 s) rationals."""
    whole = int(degrees)
    minutes = int((degrees - whole) * 60)
    seconds = Fraction(round((degrees - whole - minutes / 60) * 3600 * 10_000), 10_000)
    return (
        IFDRational(whole, 1),
        IFDRational(minutes, 1),
        IFDRational(seconds.numerator, seconds.denominator),
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb_bytes(width: int = 20000, height: int = 20000) -> bytes:
    """A greyscale PNG whose header claims width×height, with only a few rows of pixel data.

    Written chunk by chunk so the pixels are never allocated: a reader that checks the header
    refuses it at once; one that decodes first allocates width×height bytes, then finds it
    truncated.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    compressor = zlib.compressobj(9)
    row = bytes(1 + width)  # filter byte "none", then black pixels
    idat = b"".join(compressor.compress(row) for _ in range(min(height, 64)))
    idat += compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def text_as_jpg_bytes() -> bytes:
    """What a user gets by renaming notes.txt to photo.jpg."""
    return "扶贫走访记录：张三家，2026年3月14日。\nVisit notes, not a photo.\n".encode() * 20


def noisy_jpeg_bytes(width: int = 256, height: int = 192) -> bytes:
    """A JPEG of seeded noise: most of its bytes are scan data, unlike a plain colour."""
    pixels = random.Random(20260314).randbytes(width * height * 3)
    out = BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def truncated_jpeg_bytes() -> bytes:
    """A real JPEG cut off at 60 % of its length, inside the scan data (an interrupted upload)."""
    return truncated(noisy_jpeg_bytes())
