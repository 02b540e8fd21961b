"""/exports: a region's households with their progress, and its monitoring cases, as CSV or
XLSX, for the county center."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.auth.deps import HouseholdProgressReader
from app.core.base import utcnow
from app.core.config import get_settings
from app.core.db import SessionDep, TransactionsDep
from app.core.errors import problem_responses
from app.exports import service
from app.exports.columns import CASE_COLUMNS, COLUMNS, Cell, Column
from app.exports.writers import CSV_MEDIA_TYPE, csv_chunks
from app.exports.xlsx import XLSX_MEDIA_TYPE, xlsx_chunks
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
head, ID number and phone, size, origin (建档立卡户 or 一般农户), attribute, status, main
cause, years; an ordinary household has none of the register's), its income before and
after (基期 and latest per-capita income, change, that year's poverty line and monitoring
threshold; no poverty line for years after 2020), the six guarantees' latest assessment,
whether it meets the exit standard and why not (registered households only), support measures
by status with funds, visits (count, last 90 days, last visit, overdue), its risk flags
(防返贫监测) and its latest monitoring case (an open one first: category, status, the dates it
was identified and cleared, how it was cleared). The rules are those of
GET /households/{household_id}/progress.

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


def _filename(code: str, suffix: str, kind: str = "households") -> str:
    return f"{kind}-{code}-{utcnow():%Y%m%d}.{suffix}"


def _csv_export(
    request: Request,
    partitions: AsyncIterator[list[list[Cell]]],
    columns: Sequence[Column],
    filename: str,
) -> StreamingResponse:
    """Stream the CSV of `partitions`."""
    return _streamed(request, csv_chunks(partitions, columns), CSV_MEDIA_TYPE, filename)


def _streamed(
    request: Request, chunks: AsyncIterator[bytes], media_type: str, filename: str
) -> StreamingResponse:
    """Send `chunks` as they are produced, holding one of the export slots meanwhile."""
    slots = _slots(request)

    async def body() -> AsyncIterator[bytes]:
        async with slots:
            async for chunk in chunks:
                yield chunk

    return StreamingResponse(
        body(),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


_CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV (RFC 4180), UTF-8 with a byte order mark, so Excel reads it",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    **_RESPONSES,
}


@router.get(
    "/households.csv",
    response_class=StreamingResponse,
    responses=_CSV_RESPONSES,
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
    return _csv_export(request, export.partitions(transactions), COLUMNS, _filename(region, "csv"))


_CASES_DESCRIPTION = """

One row per monitoring case (防返贫监测对象) of the region's households (those of the household
export: all but `removed`, in the caller's villages), cleared and rejected ones included,
ordered by household number (户编号) and the date the risk was found: the household (户编号,
village, head, ID number and phone, origin), the case's category, risk types, how and when the
risk was found, its status, the dates it was identified and cleared, how it was cleared, the
number of procedure steps taken and the last one (step, decision, time). Codes are shown with
their Chinese labels (GET /vocabulary), identifiers as in the household export; the head's ID
number and the phone are masked unless the caller may read personal data (`pii:read`) of the
village. The XLSX household export holds the same rows in its second sheet, 监测对象."""


@router.get(
    "/monitoring-cases.csv",
    response_class=StreamingResponse,
    responses=_CSV_RESPONSES,
    description="Export a region's monitoring cases as CSV." + _CASES_DESCRIPTION,
)
async def export_monitoring_cases_csv(
    request: Request,
    session: SessionDep,
    transactions: TransactionsDep,
    principal: HouseholdProgressReader,
    region: RegionQuery,
) -> StreamingResponse:
    export = await service.prepare(session, principal=principal, code=region, now=utcnow())
    return _csv_export(
        request,
        export.case_partitions(transactions),
        CASE_COLUMNS,
        _filename(region, "csv", kind="monitoring-cases"),
    )


@router.get(
    "/households.xlsx",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An Excel workbook (Office Open XML) with two sheets: 贫困户 "
            "(households) and 监测对象 (monitoring cases, as GET /exports/monitoring-cases.csv), "
            "streamed as it is written (no Content-Length)",
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
) -> StreamingResponse:
    export = await service.prepare(session, principal=principal, code=region, now=utcnow())
    return _streamed(
        request,
        xlsx_chunks(service.xlsx_sheets(export, transactions)),
        XLSX_MEDIA_TYPE,
        _filename(region, "xlsx"),
    )
