"""Client authentication at the token endpoint (RFC 6749 §2.3.1): HTTP Basic or the form."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote_plus

from app.auth.errors import invalid_request
from app.clients.service import invalid_client

_ID_MAX, _SECRET_MAX = 64, 256


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    basic: bool  # sent with HTTP Basic


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """The client id and secret of an `Authorization: Basic` header; None for other schemes.

    Both are form-urlencoded before the Basic encoding (RFC 6749 §2.3.1), so they are decoded
    after it.
    """
    if not authorization:
        return None
    scheme, _, param = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None  # e.g. a bearer token sent along: not client authentication
    try:
        decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_client("malformed HTTP Basic credentials") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise invalid_client("malformed HTTP Basic credentials: no colon")
    return unquote_plus(raw_id), unquote_plus(raw_secret)


def read_credentials(
    authorization: str | None, client_id: str | None, client_secret: str | None
) -> ClientCredentials:
    """The client's credentials from the Basic header or the form; one method only."""
    basic = _basic(authorization)
    if basic is not None:
        if client_secret is not None:
            raise invalid_request("authenticate the client once: HTTP Basic or the form, not both")
        if client_id is not None and client_id != basic[0]:
            raise invalid_request("client_id differs from the client of the HTTP Basic header")
        found = ClientCredentials(basic[0], basic[1], basic=True)
    elif client_id and client_secret is not None:
        found = ClientCredentials(client_id, client_secret, basic=False)
    else:
        raise invalid_client(
            "client authentication required: HTTP Basic, or client_id and client_secret"
        )
    if (
        len(found.client_id) > _ID_MAX
        or len(found.client_secret) > _SECRET_MAX
        or "\x00" in found.client_id + found.client_secret
    ):
        raise invalid_client("unknown client or wrong secret")
    return found
