"""/clients: the third-party apps a county admin registers, their secrets, disabling them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.auth.deps import AccountAdmin
from app.clients import service
from app.clients.schemas import (
    ClientCreate,
    ClientPublic,
    ClientWithSecret,
    client_public,
    client_with_secret,
)
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep

router = APIRouter(prefix="/clients", tags=["clients"])

# The secret is in the body: no cache may keep it.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SECRET_HEADERS = {
    "Cache-Control": {
        "description": "no-store: the body holds a secret",
        "schema": {"type": "string"},
    }
}


@router.post(
    "",
    response_model=ClientWithSecret,
    status_code=201,
    responses={
        201: {"headers": _SECRET_HEADERS},
        **problem_responses(
            401,
            403,
            422,
            described={
                403: "Not a county admin, or granting a scope the admin's token lacks",
                422: "Invalid input, or `region_code` not at or below the admin's region",
            },
        ),
    },
)
async def create_client(
    session: SessionDep, principal: AccountAdmin, data: ClientCreate, response: Response
) -> ClientWithSecret:
    """Register a third-party app that reads a region; its secret is shown in this answer only.

    The app exchanges its `client_id` and `client_secret` at `POST /auth/token`
    (`grant_type=client_credentials`) for a short-lived token with the scopes granted here. It
    is read-only and sees what a user of its region would: other regions' objects answer 404.
    Without `pii:read`, ID numbers and phones are masked and exact positions coarsened.
    """
    client, secret = await service.create_client(session, actor=principal, data=data)
    response.headers.update(_NO_STORE | {"Location": f"/api/v1/clients/{client.id}"})
    return client_with_secret(client, secret)


@router.get("", response_model=Page[ClientPublic], responses=problem_responses(401, 403, 422))
async def list_clients(
    session: SessionDep, principal: AccountAdmin, page: PageDep
) -> Page[ClientPublic]:
    """The API clients of your region (without their secrets), oldest first."""
    clients, cursor = await service.list_clients(session, actor=principal, page=page)
    return Page(items=[client_public(c) for c in clients], next_cursor=cursor)


@router.get(
    "/{client_id}", response_model=ClientPublic, responses=problem_responses(401, 403, 404, 422)
)
async def get_client(
    session: SessionDep, principal: AccountAdmin, client_id: uuid.UUID
) -> ClientPublic:
    """One API client of your region (without its secret)."""
    return client_public(await service.get_client(session, actor=principal, client_id=client_id))


@router.post(
    "/{client_id}/rotate",
    response_model=ClientWithSecret,
    responses={
        200: {"headers": _SECRET_HEADERS},
        **problem_responses(
            401, 403, 404, 409, 422, described={409: "The client is disabled (`client_disabled`)"}
        ),
    },
)
async def rotate_client_secret(
    session: SessionDep, principal: AccountAdmin, client_id: uuid.UUID, response: Response
) -> ClientWithSecret:
    """Give a client a new secret, shown in this answer only; the old one stops working.

    Every token issued under the old secret is revoked at once.
    """
    client, secret = await service.rotate_secret(session, actor=principal, client_id=client_id)
    response.headers.update(_NO_STORE)
    return client_with_secret(client, secret)


@router.post(
    "/{client_id}/disable",
    response_model=ClientPublic,
    responses=problem_responses(401, 403, 404, 422),
)
async def disable_client(
    session: SessionDep, principal: AccountAdmin, client_id: uuid.UUID
) -> ClientPublic:
    """Disable a client for good: its tokens stop working at once and it gets no new ones.

    Disabling a disabled client again changes nothing and answers the client.
    """
    return client_public(
        await service.disable_client(session, actor=principal, client_id=client_id)
    )
