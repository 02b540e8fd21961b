"""Poverty lines and monitoring thresholds by year and scope."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from app.core.base import region_code_type, updated_at_field


class PovertyThreshold(SQLModel, table=True):
    """Poverty line and monitoring threshold by year: national, or a region's own (overrides)."""

    __tablename__ = "poverty_threshold"

    # "national" or a region code
    scope: str = Field(primary_key=True, max_length=21, sa_type=region_code_type())
    year: int = Field(primary_key=True)
    poverty_line: int | None = Field(default=None, sa_type=BigInteger)  # fen per person-year
    monitoring_threshold: int | None = Field(default=None, sa_type=BigInteger)  # fen
    note: str | None = Field(default=None, max_length=200)
    updated_at: datetime = updated_at_field()
