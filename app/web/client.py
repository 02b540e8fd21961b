"""The web app's only way to data: the public API, called in-process as the signed-in person.

Every page asks `/api/v1` with the person's own bearer token and `Accept-Language: zh-CN`,
exactly as any other client would; the ASGI transport skips the network, not the API (its
authorization, masking, rate limits and validation all apply). The browser's address is passed
on as the client's, so per-address limits still see the person.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.requests import Request

from app.web.session import WebSession

TOKEN_PATH = "/api/v1/auth/token"
API_LANGUAGE = "zh-CN"


class SignedOut(Exception):
    """No session, or the API no longer accepts it: the person signs in again."""


class ApiError(Exception):
    """The API refused or failed: its problem document (RFC 9457) or OAuth2 error."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        self.problem: dict[str, Any] = body if isinstance(body, dict) else {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        p = self.problem
        text = p.get("detail") or p.get("error_description") or p.get("title") or p.get("error")
        return str(text or f"HTTP {self.status}")

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        return errors if isinstance(errors, list) else []


def document(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; ApiError otherwise."""
    if response.status_code >= 400:
        raise ApiError(response)
    return response.json() if response.content else None


def _transport(request: Request) -> httpx.ASGITransport:
    client = request.client
    address = (client.host, client.port) if client else ("127.0.0.1", 0)
    return httpx.ASGITransport(app=request.app, client=address)


@asynccontextmanager
async def api_client(request: Request) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=_transport(request),
        base_url="http://fieldsync.internal",
        headers={"Accept-Language": API_LANGUAGE},
        timeout=httpx.Timeout(60.0),
    ) as client:
        yield client


async def request_tokens(request: Request, form: Mapping[str, str]) -> dict[str, Any]:
    """POST the token endpoint (a login or a refresh); ApiError when it refuses."""
    async with api_client(request) as client:
        response = await client.post(TOKEN_PATH, data=dict(form))
    if response.status_code != 200:
        raise ApiError(response)
    body: dict[str, Any] = response.json()
    return body


class Api:
    """The API as the signed-in person; refreshes the access token when it is about to expire."""

    def __init__(self, request: Request, client: httpx.AsyncClient, session: WebSession | None):
        self._request = request
        self._client = client
        self.session = session
        self.session_changed = False

    async def _refresh(self) -> None:
        assert self.session is not None
        try:
            tokens = await request_tokens(
                self._request,
                {
                    "grant_type": "refresh_token",
                    "refresh_token": self.session.refresh_token,
                    "device_id": self.session.device_id,
                },
            )
        except ApiError as exc:
            raise SignedOut from exc
        self.session = self.session.refreshed(tokens)
        self.session_changed = True

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The API's answer, whatever its status; SignedOut when it no longer knows the person."""
        if self.session is None:
            raise SignedOut
        if self.session.needs_refresh():
            await self._refresh()
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self._client.request(
            method,
            path,
            params=clean,
            json=json,
            files=files,
            data=data,
            headers={**(headers or {}), "Authorization": f"Bearer {self.session.access_token}"},
        )
        if response.status_code == 401:
            raise SignedOut
        return response

    async def get(self, path: str, **params: Any) -> Any:
        """GET a JSON document; ApiError unless 2xx."""
        return await self.call("GET", path, params=params)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any method, the JSON answer; ApiError unless 2xx."""
        return document(await self.send(method, path, **kwargs))
