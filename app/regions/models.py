"""Administrative divisions, county down to natural village."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.base import created_at_field, region_code_type, updated_at_field


class Region(SQLModel, table=True):
    __tablename__ = "region"

    code: str = Field(primary_key=True, max_length=21, sa_type=region_code_type())
    name: str = Field(max_length=100)
    parent_code: str | None = Field(
        default=None,
        foreign_key="region.code",
        index=True,
        max_length=21,
        sa_type=region_code_type(),
    )
    level: int = Field(index=True)
    rural_population: int | None = Field(default=None, ge=0)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
