"""/thresholds: poverty lines and monitoring thresholds by year."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.auth.deps import Reader, RegionAdmin
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.money import MoneyStr, Yuan, fen_str, to_fen
from app.core.types import NoNul
from app.regions.codes import CODE_PATTERN
from app.thresholds import service
from app.thresholds.models import PovertyThreshold

router = APIRouter(prefix="/thresholds", tags=["thresholds"])


class ThresholdPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scope": "national",
                    "year": 2019,
                    "poverty_line": "3218.00",
                    "monitoring_threshold": None,
                    "note": "国家扶贫标准",
                    "updated_at": "2026-11-23T00:00:00Z",
                }
            ]
        }
    )

    scope: str = Field(description="`national`, or the code of the region the figures are for")
    year: int
    poverty_line: MoneyStr | None = Field(description="Yuan per person and year")
    monitoring_threshold: MoneyStr | None = Field(
        description="防返贫监测范围, yuan per person-year"
    )
    note: str | None
    updated_at: datetime

    @classmethod
    def of(cls, row: PovertyThreshold) -> ThresholdPublic:
        return cls(
            scope=row.scope,
            year=row.year,
            poverty_line=fen_str(row.poverty_line) if row.poverty_line is not None else None,
            monitoring_threshold=(
                fen_str(row.monitoring_threshold) if row.monitoring_threshold is not None else None
            ),
            note=row.note,
            updated_at=row.updated_at,
        )


class ThresholdWrite(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"poverty_line": None, "monitoring_threshold": "8050.00", "note": "省定"}]
        },
    )

    poverty_line: Yuan | None = Field(
        default=None,
        description="Years up to 2020 only: there is no poverty line after 2020 (422 for a later "
        "year), when households are judged against the monitoring threshold.",
    )
    monitoring_threshold: Yuan | None = None
    note: Annotated[str, StringConstraints(max_length=200), NoNul] | None = None


@router.get("", response_model=list[ThresholdPublic], responses=problem_responses(401))
async def list_thresholds(session: SessionDep, principal: Reader) -> list[ThresholdPublic]:
    """The national figures and those of the caller's regions (a few dozen rows: not paginated)."""
    rows = await service.list_thresholds(session, principal=principal)
    return [ThresholdPublic.of(row) for row in rows]


@router.put(
    "/{scope}/{year}",
    response_model=ThresholdPublic,
    responses={
        **problem_responses(401, 403, 422),
        201: {"model": ThresholdPublic, "description": "Created"},
    },
)
async def put_threshold(
    session: SessionDep,
    principal: RegionAdmin,
    scope: Annotated[str, Path(max_length=21, pattern=CODE_PATTERN, examples=["371522000000"])],
    year: Annotated[int, Path(ge=2010, le=2100)],
    data: ThresholdWrite,
    response: Response,
) -> ThresholdPublic:
    """Set a region's own poverty line and/or monitoring threshold for a year (county admin).

    A region's own figures override the national ones for the households under it.
    """
    row, created = await service.set_threshold(
        session,
        principal=principal,
        scope=scope,
        year=year,
        poverty_line=to_fen(data.poverty_line) if data.poverty_line is not None else None,
        monitoring_threshold=(
            to_fen(data.monitoring_threshold) if data.monitoring_threshold is not None else None
        ),
        note=data.note,
    )
    response.status_code = 201 if created else 200
    return ThresholdPublic.of(row)
