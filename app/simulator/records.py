"""What a phone records offline: visits and income snapshots with ids of its own, and photos.

Every record is built as the app builds it (the API's own write schemas validate it) from the
phone's seeded dice: the same seed gives the same ids and the same content. Times fall on the
day before the run (08:00–18:00 China time), so the same seed on the same day sends the same
batches again, and the server answers them as replays.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from io import BytesIO
from typing import Any

from app.records.schemas import (
    Checks,
    IncomeSnapshotWrite,
    Location,
    PhotoRef,
    VisitWrite,
)
from app.records.vocabulary import Check, PhotoTag, RecordType, SnapshotKind, VisitMode

CHINA = timezone(timedelta(hours=8))  # the phone's clock
WORKDAY_HOURS = 10.0
# URL segments of the single-record PUT, e.g. PUT /api/v1/visits/{id}.
SEGMENTS = {RecordType.visit: "visits", RecordType.income_snapshot: "income-snapshots"}
FINDINGS = (
    "户主慢性病用药正常，光伏收益已到账",
    "家中两人外出务工，收入稳定",
    "危房改造已完工，住房安全有保障",
    "子女在校就读，享受教育资助",
    "自来水入户，饮水安全",
    "养殖规模扩大，需技术指导",
)
REQUESTS = ("希望安排公益岗位", "希望提供小额信贷", "希望开展技能培训", None)
PHOTO_SIDE = 32  # pixels: a few KB of noise, as small as a photo gets


def new_id(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from the phone's dice."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass(frozen=True)
class HouseholdCopy:
    """What the phone keeps of a household it downloaded."""

    id: uuid.UUID
    village_code: str
    size: int


@dataclass(frozen=True)
class Photo:
    sha256: str
    content: bytes
    household_id: uuid.UUID


Body = VisitWrite | IncomeSnapshotWrite


@dataclass
class LocalRecord:
    """A record on the phone: its current revision and what the server said about it."""

    type: RecordType
    id: uuid.UUID
    body: Body
    photo: Photo | None = None
    pending: bool = True  # to be sent (again)
    status: str | None = None  # the last result the server gave
    rejections: int = 0
    given_up: bool = False  # rejected for good: the officer must fix it
    server_version: int | None = None  # the revision the server said it holds

    @property
    def revision(self) -> int:
        return self.body.revision

    @property
    def household_id(self) -> uuid.UUID:
        return self.body.household_id

    def item(self) -> dict[str, Any]:
        """The record as a batch carries it: revision beside the fields."""
        return {
            "type": self.type.value,
            "id": str(self.id),
            "revision": self.revision,
            "data": self.body.model_dump(mode="json", exclude={"revision"}, exclude_defaults=True),
        }

    def put_body(self) -> dict[str, Any]:
        """The record as PUT /visits/{id} (or /income-snapshots/{id}) takes it."""
        return self.body.model_dump(mode="json", exclude_defaults=True)

    def adopt(self, data: dict[str, Any], *, revision: int) -> None:
        """Keep the server's copy of the record (as the change feed shows it)."""
        model = type(self.body)
        fields = {name: value for name, value in data.items() if name in model.model_fields}
        self.body = model.model_validate({**fields, "revision": revision})
        self.pending = False

    def edited(self, rng: random.Random, *, revision: int, where: str) -> Body:
        """Its content edited (a follow-up noted, a transfer added) as `revision`."""
        if isinstance(self.body, VisitWrite):
            note = f"{where}补记: {rng.choice(REQUESTS) or '无新诉求'}"
            return self.body.model_copy(update={"revision": revision, "follow_up": note})
        amount = Decimal(rng.randrange(100, 500_000)) / 100
        return self.body.model_copy(update={"revision": revision, "transfer_other": amount})


def workday_start(today: date) -> datetime:
    """08:00 China time on the day before `today`: when the phone's day of work began."""
    return datetime.combine(today - timedelta(days=1), time(8), CHINA)


def photo(rng: random.Random, household_id: uuid.UUID) -> Photo:
    """A tiny JPEG of seeded noise (distinct bytes per photo, so every one is stored)."""
    from PIL import Image

    out = BytesIO()
    pixels = rng.randbytes(PHOTO_SIDE * PHOTO_SIDE * 3)
    Image.frombytes("RGB", (PHOTO_SIDE, PHOTO_SIDE), pixels).save(out, "JPEG", quality=80)
    content = out.getvalue()
    return Photo(hashlib.sha256(content).hexdigest(), content, household_id)


def visit(
    rng: random.Random, household: HouseholdCopy, at: datetime, picture: Photo | None
) -> VisitWrite:
    return VisitWrite(
        revision=1,
        household_id=household.id,
        visited_at=at,
        mode=VisitMode.in_home if rng.random() < 0.9 else VisitMode.phone,
        location=Location(
            lat=round(36.2356 + rng.uniform(-0.05, 0.05), 6),
            lon=round(115.6718 + rng.uniform(-0.05, 0.05), 6),
            accuracy_m=round(rng.uniform(3, 30), 1),
        ),
        findings=rng.choice(FINDINGS),
        requests=rng.choice(REQUESTS),
        checks=Checks(
            food=Check.ok,
            clothing=Check.ok,
            education=Check.ok,
            medical=Check.ok if rng.random() < 0.95 else Check.not_ok,
            housing=Check.ok,
            water=Check.ok,
        ),
        photos=[PhotoRef(sha256=picture.sha256, tag=PhotoTag.sign_in, caption="入户签到")]
        if picture
        else [],
    )


def income_snapshot(
    rng: random.Random, household: HouseholdCopy, at: datetime
) -> IncomeSnapshotWrite:
    def yuan(most: int) -> Decimal:
        return Decimal(rng.randrange(0, most * 100)) / 100

    return IncomeSnapshotWrite(
        revision=1,
        household_id=household.id,
        year=at.year - 1,
        kind=SnapshotKind.annual,
        household_size=max(1, household.size),
        recorded_at=at,
        wage_income=yuan(40_000),
        business_income=yuan(10_000),
        business_expenses=yuan(3_000),
        property_dividend=yuan(1_000),
        transfer_pension=yuan(3_000),
    )


def record_day(
    rng: random.Random,
    households: list[HouseholdCopy],
    *,
    count: int,
    photos: int,
    start: datetime,
) -> list[LocalRecord]:
    """`count` records of one day's work over `households`: two visits to one income snapshot,
    the first `photos` visits with a sign-in photo each."""
    records = []
    moments = sorted(start + timedelta(hours=rng.uniform(0, WORKDAY_HOURS)) for _ in range(count))
    pictures = 0
    for n, at in enumerate(moments):
        household = rng.choice(households)
        record_id = new_id(rng)
        if n % 3 == 2:
            records.append(
                LocalRecord(
                    RecordType.income_snapshot, record_id, income_snapshot(rng, household, at)
                )
            )
            continue
        picture = photo(rng, household.id) if pictures < photos else None
        pictures += picture is not None
        records.append(
            LocalRecord(RecordType.visit, record_id, visit(rng, household, at, picture), picture)
        )
    return records
