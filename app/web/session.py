"""The browser's sign-in: the API's own tokens, kept in an HttpOnly, SameSite cookie.

The cookie holds the access and refresh tokens the token endpoint issued to this browser (a
device of its own), when the access token expires, and the CSRF token the pages send back on
every change. Nothing in it needs a signature: the tokens prove themselves to the API, and a
tampered CSRF token only fails its own check. Scripts never see the cookie (HttpOnly).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import asdict, dataclass

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "fieldsync_session"
# Refresh this long before the access token expires, so a page never loads half signed in.
REFRESH_MARGIN_SECONDS = 60
# The browser forgets the cookie when the refresh token could no longer be used anyway.
COOKIE_MAX_AGE_SECONDS = 30 * 24 * 3600


@dataclass
class WebSession:
    access_token: str
    refresh_token: str
    device_id: str
    expires_at: float  # epoch seconds of the access token's expiry
    csrf: str

    @classmethod
    def start(cls, *, tokens: dict[str, object], device_id: str) -> WebSession:
        """A new session from the token endpoint's answer to a password login."""
        return cls(
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
            device_id=device_id,
            expires_at=time.time() + int(str(tokens["expires_in"])),
            csrf=secrets.token_urlsafe(32),
        )

    def refreshed(self, tokens: dict[str, object]) -> WebSession:
        """The same session with the refresh grant's new tokens (rotation)."""
        return WebSession(
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens.get("refresh_token") or self.refresh_token),
            device_id=self.device_id,
            expires_at=time.time() + int(str(tokens["expires_in"])),
            csrf=self.csrf,
        )

    def needs_refresh(self) -> bool:
        return time.time() > self.expires_at - REFRESH_MARGIN_SECONDS

    def encode(self) -> str:
        raw = json.dumps(asdict(self), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> WebSession | None:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data = json.loads(raw)
            return cls(
                access_token=str(data["access_token"]),
                refresh_token=str(data["refresh_token"]),
                device_id=str(data["device_id"]),
                expires_at=float(data["expires_at"]),
                csrf=str(data["csrf"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None


def read_session(request: Request) -> WebSession | None:
    value = request.cookies.get(COOKIE)
    return WebSession.decode(value) if value else None


def write_session(response: Response, request: Request, session: WebSession) -> None:
    response.set_cookie(
        COOKIE,
        session.encode(),
        max_age=COOKIE_MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
