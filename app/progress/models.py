"""What progress keeps in the database beside the figures it computes."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from app.core.base import region_code_type


class VillageStamp(SQLModel, table=True):
    """Moved when something a village's figures depend on changed outside its change log (a
    photo its records name arrived): part of the key its kept figures are valid for."""

    __tablename__ = "progress_village_stamp"

    village_code: str = Field(primary_key=True, max_length=21, sa_type=region_code_type())
    photos: int = Field(default=0, sa_type=BigInteger)
