"""Exact positions are personal data: what a caller without `pii:read` sees of them."""

from __future__ import annotations

# Two decimals of a degree: about 1.1 km north-south and 0.9 km east-west in Shandong, which
# places a point in its village but not at its house.
COARSE_DECIMALS = 2
COARSE_DESCRIPTION = (
    "Without `pii:read` for the household's village it is coarsened: latitude and longitude "
    "rounded to 0.01° (about 1 km), without `accuracy_m`."
)


def coarse(degrees: float) -> float:
    """A latitude or longitude rounded to 0.01°."""
    return round(degrees, COARSE_DECIMALS) + 0.0  # never -0.0
