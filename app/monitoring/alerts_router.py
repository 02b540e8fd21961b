"""/monitoring/alerts: department alerts (部门筛查预警): import, list, verify."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/monitoring/alerts", tags=["monitoring"])
