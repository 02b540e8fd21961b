"""Every table's model, imported once: the metadata Alembic and the tests use."""

from app.auth.models import RefreshToken, TokenFamily
from app.core.base import metadata
from app.households.models import Household, Member
from app.regions.models import Region
from app.users.models import User, UserRegion

__all__ = [
    "Household",
    "Member",
    "RefreshToken",
    "Region",
    "TokenFamily",
    "User",
    "UserRegion",
    "metadata",
]
