"""/auth/token, /auth/revoke and /me."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from app.auth import service
from app.auth.deps import CurrentPrincipal, client_address
from app.auth.errors import OAuthError, OAuthErrorBody, invalid_request
from app.auth.schemas import MePublic, RegionRef, TokenResponse
from app.clients import service as clients_service
from app.clients.credentials import read_credentials
from app.core.config import get_settings
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.regions.models import Region
from app.users.models import ROLE_LABELS

router = APIRouter(tags=["auth"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorBody, "description": "RFC 6749 §5.2 error"},
    401: {
        "model": OAuthErrorBody,
        "description": "Client authentication failed (`invalid_client`, with "
        "`WWW-Authenticate: Basic`)",
    },
}
FormStr = Annotated[str | None, Form()]


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses=_OAUTH_ERRORS,
)
async def create_token(
    request: Request,
    session: SessionDep,
    grant_type: Annotated[
        str | None,
        Form(
            description="`password`, `refresh_token` or `client_credentials`",
            examples=["password"],
        ),
    ] = None,
    username: FormStr = None,
    password: FormStr = None,
    refresh_token: FormStr = None,
    device_id: Annotated[
        str | None,
        Form(description="The phone's stable id; refresh tokens are bound to it."),
    ] = None,
    scope: Annotated[
        str | None,
        Form(description="Space-separated scopes: fewer than the account or client is granted."),
    ] = None,
    client_id: Annotated[
        str | None,
        Form(description="client_credentials without HTTP Basic: the client's id."),
    ] = None,
    client_secret: Annotated[
        str | None,
        Form(description="client_credentials without HTTP Basic: the client's secret."),
    ] = None,
    app_version: Annotated[
        str | None,
        Form(
            description="The app's version (at most 32 printable characters), shown in the "
            "county's list of devices.",
            examples=["2.3.1"],
        ),
    ] = None,
) -> JSONResponse:
    """Exchange credentials or a refresh token for an access token and a new refresh token.

    Refresh tokens rotate on every use; presenting one that was already used revokes the whole
    login (every token issued from it). A login with a `device_id` registers the phone and binds
    its refresh tokens to it: a refresh may omit `device_id` (it continues on that phone), but one
    naming another device revokes the login. A phone the county has revoked gets
    `invalid_grant`. Errors follow RFC 6749 §5.2, not problem+json.

    API clients use `grant_type=client_credentials` (RFC 6749 §4.4), authenticating with HTTP
    Basic (`client_id:client_secret`, each form-urlencoded first) or with `client_id` and
    `client_secret` in the form. They get an access token with the scopes they were granted
    (`scope` may ask for fewer), valid `FIELDSYNC_CLIENT_TOKEN_MINUTES` (15), and no refresh
    token. A wrong secret, an unknown or disabled client: 401 `invalid_client`.
    """
    settings = get_settings()
    try:
        fields = (
            grant_type,
            username,
            password,
            refresh_token,
            device_id,
            scope,
            app_version,
            client_id,
            client_secret,
        )
        if any(value is not None and "\x00" in value for value in fields):
            raise invalid_request("form fields must not contain NUL characters")
        if grant_type == "password":
            if not username or password is None:
                raise invalid_request("username and password are required")
            if len(username) > 64 or len(password) > 1024:
                raise invalid_request("username or password too long")
            issued = await service.login_with_password(
                session,
                settings,
                username=username,
                password=password,
                device_id=device_id,
                scope=scope,
                app_version=app_version,
            )
        elif grant_type == "refresh_token":
            if not refresh_token or len(refresh_token) > 256:
                raise invalid_request("refresh_token is required")
            issued = await service.rotate_refresh_token(
                session,
                settings,
                refresh_token=refresh_token,
                device_id=device_id,
                scope=scope,
                app_version=app_version,
            )
        elif grant_type == "client_credentials":
            credentials = read_credentials(
                request.headers.get("authorization"), client_id, client_secret
            )
            issued = await clients_service.issue_token(
                session,
                settings,
                client_id=credentials.client_id,
                client_secret=credentials.client_secret,
                scope=scope,
            )
        elif not grant_type:
            raise invalid_request("grant_type is required (form-encoded body)")
        else:
            raise OAuthError(
                "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
            )
    except OAuthError as exc:
        # Returned, not raised: a detected reuse has revoked the login, and that must be
        # committed; so must the refused attempt (the audit log).
        await _note(request, session, grant_type, username, device_id, None, exc)
        return exc.response()
    await _note(request, session, grant_type, username, device_id, issued, None)
    body = TokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=issued.scope,
    )
    # No refresh_token member for client_credentials (RFC 6749 §4.4.3).
    return JSONResponse(body.model_dump(exclude_none=True), headers=_NO_STORE)


async def _note(
    request: Request,
    session: SessionDep,
    grant_type: str | None,
    username: str | None,
    device_id: str | None,
    issued: service.IssuedTokens | None,
    error: OAuthError | None,
) -> None:
    await service.note_attempt(
        session,
        grant_type=grant_type,
        username=username,
        device_id=device_id,
        client_address=client_address(request),
        issued=issued,
        error=error,
    )


@router.post(
    "/auth/revoke",
    status_code=200,
    response_class=Response,  # 200 without a body (RFC 7009 §2.2)
    responses={
        200: {"description": "Revoked, or unknown or revoked already"},
        400: {"model": OAuthErrorBody, "description": "RFC 6749 §5.2 error"},
    },
)
async def revoke_token(
    session: SessionDep,
    token: FormStr = None,
    token_type_hint: Annotated[
        str | None, Form(description="`refresh_token` or `access_token`")
    ] = None,
) -> Response:
    """Revoke the login a refresh or access token belongs to: every token of it stops working.

    Answers 200 for unknown or already revoked tokens too, as RFC 7009 requires.
    """
    if not token:
        return invalid_request("token is required").response()
    await service.revoke_token(session, get_settings(), token=token[:4096])
    return Response(status_code=200, headers=_NO_STORE)


@router.get("/me", response_model=MePublic, responses=problem_responses(401))
async def get_me(session: SessionDep, principal: CurrentPrincipal) -> MePublic:
    """The caller: role, assigned regions, granted scope and device."""
    regions = (
        await session.scalars(
            select(Region)
            .where(col(Region.code).in_(principal.region_codes))
            .order_by(col(Region.code))
        )
    ).all()
    return MePublic(
        id=principal.user.id,
        username=principal.user.username,
        display_name=principal.user.display_name,
        role=principal.role.value,
        role_label=ROLE_LABELS[principal.role],
        regions=[RegionRef(code=r.code, name=r.name, level=r.level) for r in regions],
        scope=" ".join(sorted(principal.scopes)),
        device_id=principal.device_id,
    )
