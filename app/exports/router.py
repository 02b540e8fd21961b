"""/exports: a region's households with their progress, as CSV or XLSX, for the county center."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from app.auth.deps import HouseholdProgressReader
from app.core.base import utcnow
from app.core.config import get_settings
from app.core.db import SessionDep, TransactionsDep
from app.core.errors import problem_responses
from app.exports import service
from app.exports.writers import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, csv_chunks
from app.regions.codes import CODE_PATTERN

router = APIRouter(prefix="/exports", tags=["exports"])

RegionQuery = Annotated[
    str,
    Query(
        max_length=21,
        pattern=CODE_PATTERN,
        description="The county, town or village whose households to export (its code); at or "
        "below one of your regions.",
        examples=["371522101000"],
    ),
]
_RESPONSES = problem_responses(
    401,
    404,
    422,
    described={
        404: "The region does not exist, or is not at or below one of the caller's regions",
        422: "`region` is missing, not a division code, or not a county, town or village",
    },
)
_DESCRIPTION = """

One row per household of the region (all but `removed`, in the caller's villages), ordered by
household number (户编号), with Chinese column headers: the household (户编号, village,
head, ID number and phone, size, attribute, status, main cause, years), its income before and
after (基期 and latest per-capita income, change, that year's poverty line and monitoring
threshold), the six guarantees' latest assessment, whether it meets the exit standard and why
not, support measures by status with funds, visits (count, last 90 days, last visit, overdue)
and its risk flags (防返贫监测). The rules are those of GET /households/{household_id}/progress.

The head's ID number and the phone are masked (371522********123X, 138****1234) unless the
caller may read personal data (`pii:read`) of the village. Money is in yuan with two decimals;
times are China Standard Time (UTC+8, configurable). In the CSV, identifiers of digits only
(户编号, codes, ID numbers, phones) are written `="…"`, which Excel and WPS keep as text. The
file is produced a thousand households at a time, so the server's memory does not grow with
the rows."""


def _slots(request: Request) -> anyio.CapacityLimiter:
    """Exports running at once in this process (each holds a read transaction and a core)."""
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "export_slots", None)
    if limiter is None:
        limiter = state.export_slots = anyio.CapacityLimiter(get_settings().export_concurrency)
    return limiter


def _filename(code: str, suffix: str) -> str:
    return f"households-{code}-{utcnow():%Y%m%d}.{suffix}"


@router.get(
    "/households.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV (RFC 4180), UTF-8 with a byte order mark, so Excel reads it",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **_RESPONSES,
    },
    description="Export a region's households and their progress as CSV." + _DESCRIPTION,
)
async def export_households_csv(
    request: Request,
    session: SessionDep,
    transactions: TransactionsDep,
    principal: HouseholdProgressReader,
    region: RegionQuery,
) -> StreamingResponse:
    export = await service.prepare(session, principal=principal, code=region, now=utcnow())
    slots = _slots(request)

    async def body() -> AsyncIterator[bytes]:
        async with slots:
            async for chunk in csv_chunks(export.partitions(transactions)):
                yield chunk

    return StreamingResponse(
        body(),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(region, "csv")}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/households.xlsx",
    response_class=FileResponse,
    responses={
        200: {
            "description": "An Excel workbook (Office Open XML) with one sheet, 贫困户",
            "content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        **_RESPONSES,
    },
    description="Export a region's households and their progress as an Excel workbook; "
    "numbers, money and times are typed cells, identifiers text." + _DESCRIPTION,
)
async def export_households_xlsx(
    request: Request,
    session: SessionDep,
    transactions: TransactionsDep,
    principal: HouseholdProgressReader,
    region: RegionQuery,
) -> FileResponse:
    export = await service.prepare(session, principal=principal, code=region, now=utcnow())
    async with _slots(request):
        path = await service.build_xlsx(export, transactions)
    return FileResponse(
        path,
        media_type=XLSX_MEDIA_TYPE,
        filename=_filename(region, "xlsx"),
        headers={"Cache-Control": "private, no-store"},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
