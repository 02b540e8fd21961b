"""Photos: which household one belongs to, storing verified bytes once, and reading them back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.config import Settings
from app.core.db import Transactions
from app.core.errors import InvalidInput
from app.core.events import publish
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.households.models import Household
from app.households.service import get_household
from app.photos import storage as keys
from app.photos.errors import PhotoNotFound
from app.photos.events import PhotoStored
from app.photos.imaging import ImageInfo, inspect_image
from app.photos.models import Photo, PhotoHolder, PhotoRef
from app.photos.spool import spool_dir
from app.photos.storage import Storage
from app.records.errors import RecordNotFound
from app.records.models import Measure, Visit


async def household_for_photo(
    session: AsyncSession,
    *,
    principal: Principal,
    sha256: str,
    household_id: uuid.UUID | None,
    visit_id: uuid.UUID | None,
    field_prefix: str,
) -> uuid.UUID:
    """The household a photo is uploaded for, which the caller must be allowed to write.

    Named directly, or through the visit it belongs to, or else through a record of the
    caller's villages that already references the photo, or a household of the caller's
    villages it was sent for. A household or visit outside the caller's villages is
    not found (its existence is not leaked).
    """
    if visit_id is not None:
        visit = await session.scalar(
            select(Visit)
            .join(Household, col(Household.id) == Visit.household_id)
            .where(Visit.id == visit_id, principal.within(col(Household.village_code)))
        )
        if visit is not None:
            if household_id is not None and household_id != visit.household_id:
                raise InvalidInput.field(
                    f"{field_prefix}visit_id",
                    Text(
                        "visit {visit_id} belongs to another household than {household_id}",
                        visit_id=visit_id,
                        household_id=household_id,
                    ),
                )
            household_id = visit.household_id
    if household_id is not None:
        await get_household(session, principal=principal, household_id=household_id)
        return household_id
    in_villages = principal.within(col(Household.village_code))
    referenced = await session.scalar(
        select(PhotoRef.household_id)
        .join(Household, col(Household.id) == PhotoRef.household_id)
        .where(PhotoRef.sha256 == sha256, in_villages)
        .order_by(col(PhotoRef.household_id))
        .limit(1)
    ) or await session.scalar(
        select(PhotoHolder.household_id)
        .join(Household, col(Household.id) == PhotoHolder.household_id)
        .where(PhotoHolder.sha256 == sha256, in_villages)
        .order_by(col(PhotoHolder.household_id))
        .limit(1)
    )
    if referenced is None:
        raise InvalidInput.field(
            f"{field_prefix}household_id",
            Text(
                "say which household the photo belongs to: no record in your "
                "villages references it yet"
            ),
            type="missing",
        )
    return referenced


# Decoding a photo takes up to a few hundred MB for the largest allowed (a PNG or WebP cannot
# be decoded at reduced size): one at a time per process bounds what concurrent uploads take.
_DECODING = anyio.CapacityLimiter(1)


async def inspect(settings: Settings, path: Path) -> ImageInfo:
    """Check the file is a supported, sane image and read what it tells (in a worker thread)."""
    offset = timedelta(minutes=settings.exif_utc_offset_minutes)
    return await anyio.to_thread.run_sync(
        lambda: inspect_image(
            path,
            max_pixels=settings.photo_max_pixels,
            max_decoded_bytes=settings.photo_max_decoded_bytes,
            default_utc_offset=offset,
        ),
        limiter=_DECODING,
    )


async def store_photo(
    transactions: Transactions,
    storage: Storage,
    settings: Settings,
    *,
    sha256: str,
    path: Path,
    info: ImageInfo,
    size: int,
    household_id: uuid.UUID,
    uploaded_by: uuid.UUID,
) -> Photo:
    """Store verified bytes and their thumbnail under their sha256, then the photo's row, and
    note who sent them for which household.

    The bytes go first: a photo row always names bytes the store holds. Storing bytes that are
    already there is harmless (content addressing), so two uploads of one photo may race.
    """
    new = not await storage.exists(keys.original_key(sha256))
    if new:
        await storage.put_file(keys.original_key(sha256), path, content_type=info.content_type)
    # The thumbnail goes second: with the original new, it cannot be there yet.
    if new or not await storage.exists(keys.thumbnail_key(sha256)):
        thumbnail = spool_dir(settings.data_dir) / f"{uuid.uuid4().hex}.jpg"
        try:
            await anyio.Path(thumbnail).write_bytes(info.thumbnail)
            await storage.put_file(keys.thumbnail_key(sha256), thumbnail, content_type="image/jpeg")
        finally:
            await anyio.Path(thumbnail).unlink(missing_ok=True)
    async with transactions(writing=True) as session:
        photo = await session.get(Photo, sha256)
        if photo is None:
            photo = Photo(
                sha256=sha256,
                size_bytes=size,
                content_type=info.content_type,
                width=info.width,
                height=info.height,
                taken_at=info.taken_at,
                lat=info.lat,
                lon=info.lon,
                household_id=household_id,
                uploaded_by=uploaded_by,
            )
            session.add(photo)
            await session.flush()
            await publish(session, PhotoStored(sha256=sha256))
        await add_holder(session, sha256=sha256, household_id=household_id, user_id=uploaded_by)
    return photo


async def add_holder(
    session: AsyncSession, *, sha256: str, household_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Note that `user_id` sent the bytes of `sha256` for `household_id` (once)."""
    if await session.get(PhotoHolder, (sha256, household_id, user_id)) is None:
        session.add(PhotoHolder(sha256=sha256, household_id=household_id, user_id=user_id))


def _readable(principal: Principal, sha256: Any) -> Any:
    """SQL condition: the caller may see the photo `sha256` names.

    Its bytes were sent for a household of the caller's villages, or a record there names it
    whose author sent the bytes. Naming a sha256 in a record proves nothing: anyone could copy
    one from elsewhere; having sent the bytes does.
    """
    in_villages = principal.within(col(Household.village_code))
    sent_here = exists().where(
        col(PhotoHolder.sha256) == sha256,
        col(PhotoHolder.household_id) == Household.id,
        in_villages,
    )
    holder = aliased(PhotoHolder)
    named_by_sender = exists().where(
        col(PhotoRef.sha256) == sha256,
        col(PhotoRef.household_id) == Household.id,
        in_villages,
        exists().where(col(holder.sha256) == sha256, col(holder.user_id) == PhotoRef.author_id),
    )
    return or_(sent_here, named_by_sender)


def may_see_position(principal: Principal) -> bool:
    """Whether the caller sees exactly where a photo it may read was taken (EXIF included).

    A readable photo belongs to a household of the caller's villages, so `pii:read` decides.
    """
    return "pii:read" in principal.scopes


async def may_read(session: AsyncSession, *, principal: Principal, sha256: str) -> bool:
    return bool(await session.scalar(select(_readable(principal, sha256))))


async def get_photo(session: AsyncSession, *, principal: Principal, sha256: str) -> Photo:
    """A photo the server holds and the caller may see, else PhotoNotFound."""
    photo = await session.scalar(
        select(Photo).where(Photo.sha256 == sha256, _readable(principal, col(Photo.sha256)))
    )
    if photo is None:
        raise PhotoNotFound(Text("photo {sha256} is not held or not visible to you", sha256=sha256))
    return photo


async def references_of(
    session: AsyncSession, *, principal: Principal, sha256: str
) -> list[PhotoRef]:
    """The records of the caller's villages that reference the photo."""
    rows = await session.scalars(
        select(PhotoRef)
        .join(Household, col(Household.id) == PhotoRef.household_id)
        .where(PhotoRef.sha256 == sha256, principal.within(col(Household.village_code)))
        .order_by(col(PhotoRef.record_type), col(PhotoRef.record_id))
    )
    return list(rows)


async def household_photos(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    tag: str | None,
    page: PageParams,
) -> tuple[list[tuple[PhotoRef, Photo | None]], str | None]:
    """One page of the photos the household's records name, each with its Photo if held."""
    await get_household(session, principal=principal, household_id=household_id)
    stmt = select(PhotoRef).where(PhotoRef.household_id == household_id)
    if tag is not None:
        stmt = stmt.where(PhotoRef.tag == tag)
    refs, cursor = await paginate(
        session,
        stmt,
        keys=[col(PhotoRef.sha256), col(PhotoRef.record_type), col(PhotoRef.record_id)],
        page=page,
    )
    # Held *for this caller*: a sha256 copied from another county's record must not reveal
    # that photo's type, size, dimensions or capture time.
    held = {
        photo.sha256: photo
        for photo in await session.scalars(
            select(Photo).where(
                col(Photo.sha256).in_({ref.sha256 for ref in refs}),
                _readable(principal, col(Photo.sha256)),
            )
        )
    }
    return [(ref, held.get(ref.sha256)) for ref in refs], cursor


async def measure_photos(
    session: AsyncSession, *, principal: Principal, measure_id: uuid.UUID
) -> tuple[Measure, list[tuple[PhotoRef, Photo | None]]]:
    """A measure of the caller's villages and the photos documenting it, held or not."""
    measure = await session.scalar(
        select(Measure)
        .join(Household, col(Household.id) == Measure.household_id)
        .where(Measure.id == measure_id, principal.within(col(Household.village_code)))
    )
    if measure is None:
        raise RecordNotFound(
            Text(
                "measure {measure_id} does not exist or is not visible to you",
                measure_id=measure_id,
            )
        )
    readable = _readable(principal, col(Photo.sha256))
    rows = await session.execute(
        select(PhotoRef, Photo)
        .outerjoin(Photo, (col(Photo.sha256) == PhotoRef.sha256) & readable)
        .where(PhotoRef.measure_id == measure_id, PhotoRef.household_id == measure.household_id)
        # Oldest first, photos without a capture time last, the same on every database.
        .order_by(
            col(Photo.taken_at).is_(None),
            col(Photo.taken_at),
            col(PhotoRef.sha256),
            col(PhotoRef.record_id),
        )
    )
    return measure, [(ref, photo) for ref, photo in rows]
