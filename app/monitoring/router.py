"""/monitoring-cases: open a case (idempotent PUT, like a visit), list cases, take steps."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["monitoring"])
