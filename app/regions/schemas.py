"""Region bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.i18n import text_of
from app.regions import codes
from app.regions.models import Region

_REGION_EXAMPLE: dict[str, Any] = {
    "code": "371522101201",
    "name": "王庄村",
    "parent_code": "371522101000",
    "rural_population": 1286,
}


class RegionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_REGION_EXAMPLE]})

    code: str = Field(
        description="12-digit division code; a natural village: its village's code, '-', "
        "a local id",
        examples=["371522101201"],
    )
    name: str = Field(min_length=1, max_length=100)
    parent_code: str | None = Field(
        default=None, description="Defaults to the nearest existing division above the code."
    )
    rural_population: int | None = Field(
        default=None, ge=0, le=10_000_000, description="Registered rural population (户籍农业人口)."
    )

    @field_validator("code", "parent_code")
    @classmethod
    def _valid_code(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codes.level_of(value)
            except codes.InvalidCode as exc:
                raise ValueError(text_of(exc)) from None
        return value


class RegionPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    **_REGION_EXAMPLE,
                    "level": 5,
                    "level_name": "village",
                    "updated_at": "2026-11-20T08:30:00Z",
                }
            ]
        },
    )

    code: str
    name: str
    level: int = Field(
        description="1 province, 2 city, 3 county, 4 town, 5 village, 6 natural village"
    )
    level_name: str
    parent_code: str | None
    rural_population: int | None
    updated_at: datetime

    @classmethod
    def of(cls, region: Region) -> RegionPublic:
        return cls(
            code=region.code,
            name=region.name,
            level=region.level,
            level_name=codes.Level(region.level).name,
            parent_code=region.parent_code,
            rural_population=region.rural_population,
            updated_at=region.updated_at,
        )
