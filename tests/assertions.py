"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx


def problem(response: httpx.Response, status: int, code: str, field: str | None = None) -> Any:
    """Assert an RFC 9457 problem document with this status and code (naming `field`, if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    if field is not None:
        assert field in [e["field"] for e in body.get("errors") or []], body
    return body
