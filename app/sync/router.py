"""/sync: batches up, the change feed down, the county's status, conflicts and held records."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse

from app.auth.deps import StreamingWriter, SyncReader, require
from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.config import get_settings
from app.core.db import SessionDep, TransactionsDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.regions.codes import CODE_PATTERN
from app.sync import batches, conflicts, feed, held, status
from app.sync.held_schemas import HeldAccept, HeldAccepted, HeldDiscard, HeldPublic, HeldStatus
from app.sync.schemas import (
    ChangesPage,
    ConflictPublic,
    ConflictResolve,
    ResolveResult,
    SyncBatchIn,
    SyncBatchOut,
    SyncStatus,
)
from app.users.models import Role

router = APIRouter(prefix="/sync", tags=["sync"])

# A batch is parsed and checked before its transaction opens: the caller is authenticated in a
# short transaction of its own (as the uploads are).
BatchWriter = StreamingWriter

# The sync status of a county or town: its admin or town staff, or a client granted sync:read
# (within their region).
StatusReader = Annotated[
    Principal,
    Depends(
        require(roles=(Role.county_admin, Role.town_staff, Role.api_client), scopes=("sync:read",))
    ),
]
ConflictResolver = Annotated[
    Principal,
    Depends(require(roles=(Role.county_admin, Role.first_secretary), scopes=("households:write",))),
]
# Conflicts show household fields: sync:read and households:read.
ConflictReader = Annotated[
    Principal,
    Depends(
        require(
            roles=(Role.county_admin, Role.town_staff, Role.first_secretary, Role.api_client),
            scopes=("sync:read", "households:read"),
        )
    ),
]
# Held records: the county admin of their county decides them (and alone lists them).
HeldReader = Annotated[
    Principal,
    Depends(require(roles=(Role.county_admin,), scopes=("sync:read", "records:read"))),
]
HeldDecider = Annotated[
    Principal, Depends(require(roles=(Role.county_admin,), scopes=("households:write",)))
]
# The change feed carries households and their records.
FeedReader = Annotated[
    Principal, Depends(require(scopes=("sync:read", "households:read", "records:read")))
]

_REPLAY_HEADER = {
    "Idempotent-Replay": {
        "description": "`true` when this is the stored answer to an earlier delivery of the batch",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

_BATCH_DESCRIPTION = """

Every record gets one result, in order: `created`, `updated`, `unchanged` (a retry), `stale` (the
server holds a later revision), `conflict`, `rejected` (with `code`, `retryable` and the same
field `errors` as the single endpoints, named `records.<i>.…`) or `held`. One bad record never
blocks the rest; the batch as a whole is applied entirely or not at all.

**Held records.** A visit, income snapshot, measure or monitoring case for a household whose
village was taken from you since (reassigned by the county) is not refused: it is kept whole for
the county admin, answered `held` with `code` `village_unassigned`, a Chinese `reason` to show
and its `held_id`. Stop sending it: the county accepts it under an officer who works there now,
or discards it with a reason (`GET /sync/held`). Sent again, it gets the same answer.

**Retry freely.** The batch and its results are stored with its records: the same `batch_id`
again returns the stored answer (`Idempotent-Replay: true`) and changes nothing; the same
`batch_id` with other content is a 409 `batch_id_reused`. A phone that lost the answer can also
`GET /sync/batches/{batch_id}`.

**Household edits** carry the `base_version` the phone last saw and only the changed fields.
Applied when the household is still at that version, merged when the fields changed since do
not overlap, otherwise `conflict` with the overlapping `fields` and the `server_values`; the
conflict waits in `GET /sync/conflicts` for the county or the first secretary.

**Limits:** at most 500 records and 10 MB (inflated) per batch; 413 beyond, with `limit_records`
or `limit_bytes`. Bodies may be sent with `Content-Encoding: gzip`; answers are gzipped for
clients that accept it.
"""


@router.post(
    "/batches",
    response_model=SyncBatchOut,
    responses={
        **problem_responses(401, 403, 409, 413, 415, 422),
        200: {"headers": _REPLAY_HEADER},
    },
    description="Upload what the phone recorded offline (visits, income snapshots, measures, "
    "household edits)." + _BATCH_DESCRIPTION,
)
async def upload_batch(
    transactions: TransactionsDep, principal: BatchWriter, batch: SyncBatchIn
) -> Any:
    """Upload a batch of offline records, idempotently."""
    batches.check_limits(batch, get_settings())
    document, replayed = await batches.receive(transactions, principal=principal, batch=batch)
    headers = {"Idempotent-Replay": "true"} if replayed else None
    return JSONResponse(document, headers=headers)


@router.get(
    "/batches/{batch_id}",
    response_model=SyncBatchOut,
    responses=problem_responses(401, 404),
)
async def get_batch(session: SessionDep, principal: SyncReader, batch_id: uuid.UUID) -> Any:
    """The stored answer to one of your batches (for a phone that lost it)."""
    document = await batches.get_batch(session, principal=principal, batch_id=batch_id)
    return JSONResponse(document)


@router.get(
    "/changes",
    response_model=ChangesPage,
    responses=problem_responses(401, 403, 410, 422),
)
async def list_changes(
    session: SessionDep,
    principal: FeedReader,
    cursor: Annotated[
        str | None,
        Query(max_length=4096, description="`next_cursor` of the previous answer; none at first."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Changes per page.")] = 100,
) -> Any:
    """What changed in your villages since your cursor (a first download without one).

    Households come with their members; visits, income snapshots and measures of every author.
    `delete` entries name what left your villages (a household moved, a reassignment). Keep
    `next_cursor` and ask again while `has_more`; no change is skipped or repeated. A cursor the
    server cannot continue from (malformed, another user's, older than the kept history) gets
    410 `cursor_gone`: drop the local copy and download afresh without a cursor.
    """
    return await feed.read_changes(
        session, principal=principal, cursor=cursor, limit=limit, settings=get_settings()
    )


@router.get(
    "/status",
    response_model=SyncStatus,
    responses={
        **problem_responses(401, 403, 404),
        200: {
            "headers": {
                "ETag": {"description": "Poll with If-None-Match", "schema": {"type": "string"}}
            }
        },
        304: {"description": "Nothing changed since the ETag given in If-None-Match"},
    },
)
async def get_sync_status(
    session: SessionDep,
    principal: StatusReader,
    response: Response,
    region: Annotated[
        str | None,
        Query(pattern=CODE_PATTERN, description="County, town or village code; default: yours."),
    ] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Which devices synced, which are behind, what was rejected or is in conflict (county admin).

    Per device: user, villages, app version, last seen and last sync, the last batch and its
    counts, records sent in the last 24 hours and 7 days, rejected records, open conflicts,
    photos still missing, days since the last sync and `behind`. Then a line per village and a
    summary. Poll with `If-None-Match`: 304 while nothing changed. An API client granted
    `sync:read` sees its own region.
    """
    settings = get_settings()
    code = status.region_of(principal, region)
    now = utcnow()
    tag = await status.etag(session, region=code, settings=settings, now=now)
    if if_none_match is not None and tag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": tag})
    document = await status.sync_status(session, region=code, settings=settings, now=now)
    response.headers["ETag"] = tag
    return document


@router.get(
    "/conflicts",
    response_model=Page[ConflictPublic],
    responses=problem_responses(401, 403, 422),
)
async def list_conflicts(
    session: SessionDep,
    principal: ConflictReader,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(pattern=CODE_PATTERN, description="Only this county, town or village."),
    ] = None,
    state: Annotated[
        Literal["open", "resolved"], Query(alias="status", description="open (default) or resolved")
    ] = "open",
) -> Any:
    """Household edits from phones that clashed with changes on the server (oldest first).

    For the county admin, the village's first secretary, and API clients granted `sync:read`
    and `households:read` (in their region); without `pii:read` phones are masked, except in
    `client_changes` of the caller's own edit (what she sent herself).
    """
    items, cursor = await conflicts.list_conflicts(
        session, principal=principal, region=region, status=state, page=page
    )
    return {"items": items, "next_cursor": cursor}


@router.post(
    "/conflicts/{conflict_id}/resolve",
    response_model=ResolveResult,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def resolve_conflict(
    session: SessionDep,
    principal: ConflictResolver,
    conflict_id: uuid.UUID,
    data: ConflictResolve,
) -> Any:
    """Resolve a conflict: keep the server's values, apply the phone's, or set merged values.

    County admin or the village's first secretary. The household's version moves on when values
    change; phones receive it through the change feed.
    """
    conflict, version = await conflicts.resolve_conflict(
        session, principal=principal, conflict_id=conflict_id, data=data
    )
    return {"conflict": conflict, "household_version": version}


_HELD_404 = "No such held record in your county (`held_record_not_found`)"


@router.get(
    "/held",
    response_model=Page[HeldPublic],
    responses=problem_responses(401, 403, 422),
)
async def list_held_records(
    session: SessionDep,
    principal: HeldReader,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(pattern=CODE_PATTERN, description="Only this town or village of your county."),
    ] = None,
    state: Annotated[
        HeldStatus,
        Query(alias="status", description="held (default: still to decide), accepted or discarded"),
    ] = HeldStatus.held,
) -> Any:
    """Records phones sent for villages taken from their authors, kept for you (oldest first).

    County admin only, for the county's villages. Each comes whole (`data`), with its author,
    device, batch and the reason the phone was given.
    """
    items, cursor = await held.list_held(
        session, principal=principal, region=region, status=state, page=page
    )
    return {"items": items, "next_cursor": cursor}


@router.post(
    "/held/{held_id}/accept",
    response_model=HeldAccepted,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        described={
            403: "Not the county admin; or the record exists and the chosen author may not "
            "change it (`forbidden`)",
            404: _HELD_404 + "; or its household left your county (`household_not_found`)",
            409: "Already accepted or discarded (`held_record_decided`); or the server holds a "
            "later revision or other content of the same revision (`held_record_clash`, with "
            "`outcome` and `version`): nothing was stored and it stays held",
            422: "`body.author_id` is not an active officer or first secretary of the village",
        },
    ),
)
async def accept_held_record(
    session: SessionDep, principal: HeldDecider, held_id: uuid.UUID, data: HeldAccept
) -> Any:
    """Store a held record under an author now assigned its village (default: you).

    It is written as if sent by that author (revision rules, change feed, webhooks), stamped
    with the phone it was recorded on; the held record is marked accepted.
    """
    return await held.accept_held(
        session, principal=principal, held_id=held_id, author_id=data.author_id
    )


@router.post(
    "/held/{held_id}/discard",
    response_model=HeldPublic,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        described={
            404: _HELD_404,
            409: "Already accepted or discarded (`held_record_decided`)",
        },
    ),
)
async def discard_held_record(
    session: SessionDep, principal: HeldDecider, held_id: uuid.UUID, data: HeldDiscard
) -> Any:
    """Close a held record without storing it; your reason is kept with it."""
    return await held.discard_held(
        session, principal=principal, held_id=held_id, reason=data.reason
    )
