"""Between the phone's bodies and stored rows: columns from a write, the public view of a row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.money import divide_half_up, fen_str, to_fen
from app.households.privacy import coarse, scrub
from app.monitoring import income as monitoring_income
from app.monitoring.models import MonitoringCase
from app.records.models import IncomeSnapshot, Measure, RecordColumns, Visit
from app.records.schemas import (
    COMPONENTS,
    RIGID_EXPENSES,
    Checks,
    IncomeSnapshotPublic,
    IncomeSnapshotWrite,
    Location,
    MeasurePublic,
    MeasureWrite,
    VisitPublic,
    VisitWrite,
)
from app.records.vocabulary import INDICATORS
from app.thresholds import service as thresholds_service

# A visit recorded this long after it happened is kept but flagged for the county to check.
LONG_AGO = timedelta(days=365)


def _common(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "revision": record.revision,
        "household_id": record.household_id,
        "author_id": record.author_id,
        "device_id": record.device_id,
        "received_at": record.received_at,
        "updated_at": record.updated_at,
    }


# --- visits ----------------------------------------------------------------------------------


def visit_columns(data: VisitWrite, *, now: datetime) -> dict[str, Any]:
    location = data.location
    columns: dict[str, Any] = {
        "visited_at": data.visited_at,
        "mode": data.mode.value,
        "lat": location.lat if location else None,
        "lon": location.lon if location else None,
        "accuracy_m": location.accuracy_m if location else None,
        "crs": location.crs.value if location else None,
        "address": data.address,
        "findings": data.findings,
        "requests": data.requests,
        "follow_up": data.follow_up,
        "photos": [p.model_dump(mode="json") for p in data.photos],
        "flags": ["visited_long_ago"] if data.visited_at < now - LONG_AGO else [],
    }
    for name in INDICATORS:
        columns[f"check_{name}"] = getattr(data.checks, name).value
    return columns


def visit_public(visit: Visit, *, reveal_pii: bool) -> VisitPublic:
    """The visit as a caller sees it: without `reveal_pii`, its position coarsened, its address
    left out and its text scrubbed."""
    location = None
    if visit.lat is not None and visit.lon is not None:
        if reveal_pii:
            location = Location(
                lat=visit.lat, lon=visit.lon, accuracy_m=visit.accuracy_m, crs=visit.crs
            )
        else:
            location = Location(lat=coarse(visit.lat), lon=coarse(visit.lon), crs=visit.crs)
    text = _text(visit, VISIT_TEXT, reveal_pii=reveal_pii)
    return VisitPublic(
        **_common(visit),
        visited_at=visit.visited_at,
        mode=visit.mode,
        location=location,
        address=visit.address if reveal_pii else None,
        **text,
        checks=Checks(**{name: getattr(visit, f"check_{name}") for name in INDICATORS}),
        photos=visit.photos if reveal_pii else _shown_photos(visit.photos),
        flags=visit.flags,
    )


# --- income snapshots --------------------------------------------------------------------------


def snapshot_columns(data: IncomeSnapshotWrite) -> dict[str, Any]:
    """Components in fen and the totals DOMAIN.md defines, all in exact integer arithmetic.

    The ten transfers make the transfer income; the rigid expenses are kept beside the net
    income (their sum in `rigid_expenses`), never subtracted from it.
    """
    fen = {name: to_fen(getattr(data, name)) for name in (*COMPONENTS, *RIGID_EXPENSES)}
    property_income = fen["property_dividend"] + fen["property_other"]
    transfer_income = sum(fen[name] for name in COMPONENTS if name.startswith("transfer_"))
    net_income = (
        fen["wage_income"]
        + fen["business_income"]
        + property_income
        + transfer_income
        - fen["business_expenses"]
    )
    return {
        "year": data.year,
        "kind": data.kind.value,
        "household_size": data.household_size,
        "recorded_at": data.recorded_at,
        **fen,
        "property_income": property_income,
        "transfer_income": transfer_income,
        "net_income": net_income,
        "per_capita_income": divide_half_up(net_income, data.household_size),
        "rigid_expenses": sum(fen[name] for name in RIGID_EXPENSES),
    }


async def snapshot_publics(
    session: AsyncSession, snapshots: Sequence[IncomeSnapshot], *, village_code: str
) -> list[IncomeSnapshotPublic]:
    """Public views, with the figures in force for each snapshot's year in the household's
    region and the income judged for monitoring (the region's excluded items left out)."""
    effective = await thresholds_service.effective_thresholds(
        session, region_code=village_code, years={s.year for s in snapshots}
    )
    excluded = await monitoring_income.excluded_items(session, region_code=village_code)
    out = []
    for snapshot in snapshots:
        figures = effective[snapshot.year]
        line, threshold = figures.poverty_line, figures.monitoring_threshold
        monitoring = monitoring_income.monitoring_per_capita(snapshot, excluded)
        money = {
            name: fen_str(getattr(snapshot, name))
            for name in (
                *COMPONENTS,
                *RIGID_EXPENSES,
                "rigid_expenses",
                "property_income",
                "transfer_income",
                "net_income",
                "per_capita_income",
            )
        }
        out.append(
            IncomeSnapshotPublic(
                **_common(snapshot),
                year=snapshot.year,
                kind=snapshot.kind,
                household_size=snapshot.household_size,
                recorded_at=snapshot.recorded_at,
                **money,
                poverty_line=fen_str(line) if line is not None else None,
                monitoring_threshold=fen_str(threshold) if threshold is not None else None,
                monitoring_threshold_year=figures.monitoring_threshold_year,
                above_poverty_line=snapshot.per_capita_income > line if line is not None else None,
                monitoring_income=fen_str(monitoring),
                above_monitoring_threshold=(
                    monitoring > threshold if threshold is not None else None
                ),
            )
        )
    return out


# --- measures ------------------------------------------------------------------------------------


def measure_columns(data: MeasureWrite) -> dict[str, Any]:
    return {
        "category": data.category.value,
        "title": data.title,
        "details": data.details,
        "funds": to_fen(data.funds_yuan) if data.funds_yuan is not None else None,
        "funds_spent": to_fen(data.funds_spent_yuan) if data.funds_spent_yuan is not None else None,
        "start_date": data.start_date,
        "due_date": data.due_date,
        "status": data.status.value,
        "progress_pct": data.progress_pct,
        "progress_reports": [r.model_dump(mode="json") for r in data.progress_reports],
    }


def measure_public(measure: Measure, *, reveal_pii: bool) -> MeasurePublic:
    """The measure as a caller sees it: without `reveal_pii`, its text scrubbed."""
    return MeasurePublic(
        **_common(measure),
        category=measure.category,
        **_text(measure, MEASURE_TEXT, reveal_pii=reveal_pii),
        funds_yuan=fen_str(measure.funds) if measure.funds is not None else None,
        funds_spent_yuan=fen_str(measure.funds_spent) if measure.funds_spent is not None else None,
        start_date=measure.start_date,
        due_date=measure.due_date,
        status=measure.status,
        progress_pct=measure.progress_pct,
        progress_reports=(
            measure.progress_reports if reveal_pii else _shown_reports(measure.progress_reports)
        ),
    )


# --- what a caller without pii:read is shown, and what comes back of it ------------------------

# Free text, shown scrubbed (see `app.households.privacy.scrub`). A visit's address is left out
# altogether: it places the house, which a scrubbed street number would still do.
VISIT_TEXT = ("findings", "requests", "follow_up")
MEASURE_TEXT = ("title", "details")
CASE_TEXT = ("description",)


def _scrubbed(text: str | None) -> str | None:
    return scrub(text) if text else text


def _text(record: Any, names: tuple[str, ...], *, reveal_pii: bool) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in names}
    return values if reveal_pii else {name: _scrubbed(v) for name, v in values.items()}


def _shown_photos(photos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**photo, "caption": _scrubbed(photo.get("caption"))} for photo in photos]


def _shown_reports(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **report,
            "note": _scrubbed(report.get("note")),
            "photos": _shown_photos(report.get("photos") or []),
        }
        for report in reports
    ]


def case_content(case: MonitoringCase, *, reveal_pii: bool) -> dict[str, Any]:
    """A monitoring case's free text and photos as a caller sees them (scrubbed without
    `reveal_pii`, like a visit's)."""
    return {
        **_text(case, CASE_TEXT, reveal_pii=reveal_pii),
        "photos": case.photos if reveal_pii else _shown_photos(case.photos),
    }


def _kept(stored: str | None, sent: str | None) -> str | None:
    """The stored text if `sent` is what a caller without pii:read was shown of it."""
    return stored if stored and sent == scrub(stored) else sent


def _keep_captions(
    stored: list[dict[str, Any]], sent: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    # A photo is known by its file and tag (the same file may come twice with other tags).
    captions = {
        (photo["sha256"], photo.get("tag"), scrub(photo["caption"])): photo["caption"]
        for photo in stored
        if photo.get("caption")
    }
    kept = []
    for photo in sent:  # from the write body: every key is there
        key = (photo["sha256"], photo["tag"], photo["caption"])
        kept.append({**photo, "caption": captions[key]} if key in captions else photo)
    return kept


def _keep_reports(stored: list[dict[str, Any]], sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A progress report is known by the moment it was reported.
    notes = {
        (report["reported_at"], scrub(report["note"])): report["note"]
        for report in stored
        if report.get("note")
    }
    photos = [photo for report in stored for photo in report.get("photos") or []]
    return [
        {
            **report,
            "note": notes.get((report["reported_at"], report["note"]), report["note"]),
            "photos": _keep_captions(photos, report["photos"]),
        }
        for report in sent
    ]


def _keep_position(stored: Visit, columns: dict[str, Any]) -> None:
    if (
        stored.lat is not None
        and stored.lon is not None
        and columns["lat"] == coarse(stored.lat)
        and columns["lon"] == coarse(stored.lon)
        and columns["accuracy_m"] is None
        and columns["crs"] == stored.crs
    ):
        for name in ("lat", "lon", "accuracy_m"):
            columns[name] = getattr(stored, name)


def keep_what_was_shown(stored: RecordColumns, columns: dict[str, Any]) -> None:
    """Keep the stored values that a new revision from a caller without pii:read sends back as
    it was shown them.

    Such a phone received the position coarsened, the address left out and the text scrubbed;
    editing the record there sends those back, which must not replace what is stored. A value
    that differs from what was shown is an edit and is stored as sent (so such a caller cannot
    clear a visit's address: they never saw it).
    """
    if isinstance(stored, Visit):
        _keep_position(stored, columns)
        if columns["address"] is None:
            columns["address"] = stored.address
        for name in VISIT_TEXT:
            columns[name] = _kept(getattr(stored, name), columns[name])
        columns["photos"] = _keep_captions(stored.photos, columns["photos"])
    elif isinstance(stored, MonitoringCase):
        for name in CASE_TEXT:
            columns[name] = _kept(getattr(stored, name), columns[name])
        columns["photos"] = _keep_captions(stored.photos, columns["photos"])
    elif isinstance(stored, Measure):
        for name in MEASURE_TEXT:
            columns[name] = _kept(getattr(stored, name), columns[name])
        columns["progress_reports"] = _keep_reports(
            stored.progress_reports, columns["progress_reports"]
        )
