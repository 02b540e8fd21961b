"""visit_far_from_village: the one check done in Python (medians of the others, distances on
the sphere, GCJ-02/BD-09 positions back to WGS-84).

SQL hands over the positions of in-person visits ordered by village, streamed in batches; a
village is judged when the next one starts, so memory holds one village's visits and the work
is O(n log n) per village (two sorts). Only the few visits found far are then looked up again
for their household. Cost: one row of five columns per positioned visit in scope, on every
request that includes this kind (a county with 300,000 visits: about a second).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from sqlalchemy import Select, String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import get_settings
from app.core.i18n import Text
from app.households.models import Household
from app.quality import geo
from app.quality.describe import issue
from app.quality.schemas import QualityIssue
from app.quality.scope import Scope
from app.quality.vocabulary import REMOTE_VISIT_MODES, IssueKind, IssueRecordType
from app.records.models import Visit

_BATCH = 5000


async def _rows(session: AsyncSession, stmt: Select[*tuple[Any, ...]]) -> AsyncIterator[Any]:
    # Core rows (no ORM loading), a greenlet switch per batch rather than per row.
    connection = await session.connection()
    result = await connection.stream(stmt.execution_options(yield_per=_BATCH))
    async for rows in result.partitions():
        for row in rows:
            yield row


# A degree of latitude on the sphere geo.haversine_km measures; a degree of longitude is no
# longer. Going north-south then east-west is a path no shorter than the great circle, so
# a point whose |Δlat| + |Δlon| spans less than the distance bound is settled without trig.
_KM_PER_DEGREE = math.radians(1) * geo.EARTH_RADIUS_KM


def _far_in_village(
    visits: list[Any], *, far_km: float, min_others: int
) -> list[tuple[Any, float]]:
    """The visits of one village far from the median position of its other visits, with km."""
    if len(visits) < min_others + 1:
        return []
    points = [
        geo.to_wgs84(v.lat, v.lon, v.crs) if v.crs in ("gcj02", "bd09") else (v.lat, v.lon)
        for v in visits
    ]
    lat_medians = geo.medians_of_others([p[0] for p in points])
    lon_medians = geo.medians_of_others([p[1] for p in points])
    near = far_km / _KM_PER_DEGREE
    found = []
    for visit, (lat, lon), mlat, mlon in zip(visits, points, lat_medians, lon_medians, strict=True):
        if abs(lat - mlat) + abs(lon - mlon) <= near:
            continue
        km = geo.haversine_km(lat, lon, mlat, mlon)
        if km > far_km:
            found.append((visit, km))
    return found


async def visit_far_from_village(session: AsyncSession, scope: Scope) -> list[QualityIssue]:
    """In-person visits more than `quality_far_from_village_km` from the coordinate-wise median
    of the village's other in-person positioned visits (needs `quality_min_other_visits`)."""
    positions = (
        select(
            col(Household.village_code),
            cast(col(Visit.id), String).label("id"),  # text: made a UUID only when far
            col(Visit.lat),
            col(Visit.lon),
            col(Visit.crs),
        )
        .join(Household, col(Household.id) == Visit.household_id)
        .where(
            *scope.households,
            col(Visit.lat).is_not(None),
            col(Visit.lon).is_not(None),
            col(Visit.mode).not_in(REMOTE_VISIT_MODES),
        )
        .order_by(col(Household.village_code))
    )
    settings = get_settings()
    far_km = settings.quality_far_from_village_km
    far_in = partial(_far_in_village, far_km=far_km, min_others=settings.quality_min_other_visits)
    far: list[tuple[Any, float, int]] = []
    village: list[Any] = []
    async for row in _rows(session, positions):
        if village and row.village_code != village[0].village_code:
            far += [(visit, km, len(village) - 1) for visit, km in far_in(village)]
            village = []
        village.append(row)
    far += [(visit, km, len(village) - 1) for visit, km in far_in(village)]
    if not far:
        return []
    households: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    ids = [uuid.UUID(visit.id) for visit, _, _ in far]
    for start in range(0, len(ids), 1000):
        rows = await session.execute(
            select(col(Visit.id), col(Household.id), col(Household.number))
            .join(Household, col(Household.id) == Visit.household_id)
            .where(col(Visit.id).in_(ids[start : start + 1000]))
        )
        households.update({visit_id: (hid, number) for visit_id, hid, number in rows})
    return [
        issue(
            IssueKind.visit_far_from_village,
            village_code=visit.village_code,
            record_type=IssueRecordType.visit,
            record_id=uuid.UUID(visit.id),
            household_id=households[uuid.UUID(visit.id)][0],
            household_number=households[uuid.UUID(visit.id)][1],
            detail=Text(
                "the visit's position is {km:.1f} km from the median position of "
                "the village's {others} other visits (more than {far_km:g} km)",
                km=km,
                others=others,
                far_km=far_km,
            ),
        )
        for visit, km, others in far
    ]
