"""Positions of visits: to WGS-84, distances, and each point's median of the others."""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_KM = 6371.0088
# The GCJ-02 ("Mars") obfuscation's ellipsoid (Krasovsky 1940) and BD-09's extra rotation.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


def _in_china(lat: float, lon: float) -> bool:
    # GCJ-02 is applied inside (roughly) mainland China only.
    return 0.8293 <= lat <= 55.8271 and 72.004 <= lon <= 137.8347


def _gcj_delta(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    wave = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + wave
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + wave
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (
        (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    dlat = dlat * 180.0 / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = dlon * 180.0 / (_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if not _in_china(lat, lon):
        return lat, lon
    dlat, dlon = _gcj_delta(lat, lon)
    return lat + dlat, lon + dlon


def to_wgs84(lat: float, lon: float, crs: str | None) -> tuple[float, float]:
    """WGS-84 position of a GCJ-02 or BD-09 one (within a few metres: one inverse step)."""
    if crs == "bd09":
        x, y = lon - 0.0065, lat - 0.006
        z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
        theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
        lat, lon, crs = z * math.sin(theta), z * math.cos(theta), "gcj02"
    if crs == "gcj02" and _in_china(lat, lon):
        dlat, dlon = _gcj_delta(lat, lon)
        return lat - dlat, lon - dlon
    return lat, lon


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def medians_of_others(values: Sequence[float]) -> list[float]:
    """For each value, the median of all the other values: O(n log n), one sort.

    Leaving out the value at sorted rank r shifts the order statistics above r down by one, so
    each median is one or two neighbours of the middle of the sorted list. Needs two values.
    """
    n = len(values)
    order = sorted(range(n), key=values.__getitem__)
    ordered = [values[j] for j in order]
    out = [0.0] * n
    k = n - 1  # how many others
    if k % 2:
        j = k // 2  # the middle of the others: ordered[j] below it, ordered[j + 1] from it on
        below, above = ordered[j], ordered[j + 1]
        for rank, index in enumerate(order):
            out[index] = below if j < rank else above
    else:
        a, b = k // 2 - 1, k // 2  # the two middles of the others
        for rank, index in enumerate(order):
            low = ordered[a] if a < rank else ordered[a + 1]
            high = ordered[b] if b < rank else ordered[b + 1]
            out[index] = (low + high) / 2
    return out
