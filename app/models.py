"""Every table's model, imported once: the metadata Alembic and the tests use."""

from app.auth.models import RefreshToken, TokenFamily
from app.core.base import metadata
from app.households.models import Household, HouseholdChange, Member
from app.records.models import (
    IncomeSnapshot,
    Measure,
    MeasureRevision,
    Visit,
)
from app.regions.models import Region
from app.thresholds.models import PovertyThreshold
from app.users.models import User, UserRegion

__all__ = [
    "Household",
    "HouseholdChange",
    "IncomeSnapshot",
    "Measure",
    "MeasureRevision",
    "Member",
    "PovertyThreshold",
    "RefreshToken",
    "Region",
    "TokenFamily",
    "User",
    "UserRegion",
    "Visit",
    "metadata",
]
