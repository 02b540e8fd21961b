"""OAuth 2.0 errors (RFC 6749 §5.2): the token and revocation endpoints answer in this form."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class OAuthErrorBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": "invalid_grant", "error_description": "wrong username or password"}
            ]
        }
    )

    error: str = Field(
        description="invalid_request, invalid_client, invalid_grant, unauthorized_client, "
        "unsupported_grant_type or invalid_scope",
        examples=["invalid_grant"],
    )
    error_description: str | None = Field(default=None, examples=["wrong username or password"])


class OAuthError(Exception):
    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="fieldsync"'
        body = OAuthErrorBody(error=self.error, error_description=self.description)
        return JSONResponse(body.model_dump(), status_code=self.status, headers=headers)


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)
