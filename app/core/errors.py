"""RFC 9457 problem documents: one error hierarchy and the handlers that render it."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.i18n import (
    DEFAULT_LANGUAGE,
    N_,
    Text,
    current_language,
    language_headers,
    negotiate,
    render,
    translate,
    using_language,
)
from app.core.validation_text import validation_text

log = logging.getLogger("fieldsync.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://fieldsync.example/problems/"


class FieldError(BaseModel):
    field: str = Field(
        description="Dotted path of the offending input, e.g. body.members.0.id_number"
    )
    message: str
    type: str = Field(description="Machine-readable kind of error, e.g. missing, invalid_id_number")

    # The message as a Text for other languages (`message` is the English: pydantic's own
    # message, or the Text's English).
    _text: Text | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, field: str, message: Text, *, type: str = "invalid") -> FieldError:
        error = cls(field=field, message=str(message), type=type)
        error._text = message
        return error

    def rendered(self) -> dict[str, Any]:
        """The error as sent, its message in the request's language."""
        language = current_language()
        translated = self._text is not None and language != DEFAULT_LANGUAGE
        message = self._text.render(language) if self._text and translated else self.message
        return {"field": self.field, "message": message, "type": self.type}


class Problem(BaseModel):
    """An RFC 9457 problem document, with fieldsync's `code` and `retryable` extensions."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": f"{PROBLEM_BASE}not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "household 6f1c… does not exist or is not visible to you",
                    "code": "not_found",
                    "retryable": False,
                }
            ]
        },
    )

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str = Field(description="Stable machine-readable error code.")
    retryable: bool = Field(description="Whether sending the same request again may succeed.")
    errors: list[FieldError] | None = None


class AppError(Exception):
    """Base of every error the API reports; subclasses set status, code and title.

    The detail is a `Text`, rendered with the title in the request's language; `detail` holds
    its English (logs, the CLI, stored sync answers).
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        detail: Text | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        self.text = detail
        self.detail = str(detail) if detail is not None else None
        super().__init__(self.detail or self.title)
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document, its texts in the request's language."""
        language = current_language()
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code.replace("_", "-"),
            "title": translate(self.title, language),
            "status": self.status,
            "code": self.code,
            "retryable": self.retryable,
        }
        if self.text is not None and self.detail:
            body["detail"] = self.text.render(language)
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.rendered() for e in self.errors]
        body.update(render(self.extensions, language))
        return body


class InvalidInput(AppError):
    status = 422
    code = "validation_failed"
    title = "Invalid input"

    @classmethod
    def field(cls, field: str, message: Text, *, type: str = "invalid") -> InvalidInput:
        return cls(message, errors=[FieldError.of(field, message, type=type)])


class InvalidCharacter(InvalidInput):
    code = "invalid_character"
    title = "Invalid character"


class NotAuthenticated(AppError):
    status = 401
    code = "not_authenticated"
    title = "Not authenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    title = "Insufficient scope"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(AppError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


class PreconditionRequired(AppError):
    status = 428
    code = "precondition_required"
    title = "Precondition required"


class PayloadTooLarge(AppError):
    """The request body passes the limit of its path, counted after gzip inflation."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"

    def __init__(self, *, limit_bytes: int) -> None:
        super().__init__(
            Text(
                "request body larger than the limit of {limit_bytes} bytes "
                "(counted after decompression)",
                limit_bytes=limit_bytes,
            ),
            limit_bytes=limit_bytes,
        )


class UnsupportedContentEncoding(AppError):
    status = 415
    code = "unsupported_content_encoding"
    title = "Unsupported content encoding"

    @classmethod
    def of(cls, coding: str) -> UnsupportedContentEncoding:
        supported = "gzip, x-gzip, identity"
        return cls(
            Text(
                "request bodies in content coding {coding!r} are not accepted; "
                "send one of: {supported}",
                coding=coding[:40],
                supported=supported,
            ),
            headers={"Accept-Encoding": "gzip, identity"},
        )


class InvalidBodyEncoding(AppError):
    status = 400
    code = "invalid_body_encoding"
    title = "Invalid body encoding"


def field_errors(exc: ValidationError, prefix: str = "body.") -> list[FieldError]:
    """Pydantic's errors as FieldErrors, their fields named from `prefix` ("records.3.data.")."""
    return [
        _field_error_of((prefix + ".".join(str(part) for part in err["loc"])).rstrip("."), err)
        for err in exc.errors()
    ]


def _field_error_of(field: str, err: Any) -> FieldError:
    """A pydantic error as a FieldError: pydantic's English message, a Text where one is known."""
    error = FieldError(field=field, message=err["msg"], type=err["type"])
    error._text = validation_text(err)
    return error


def invalid_fields(errors: list[FieldError]) -> InvalidInput:
    """The 422 for these field errors, naming every field in its detail."""
    fields = ", ".join(e.field for e in errors)
    return InvalidInput(Text("invalid input in: {fields}", fields=fields), errors=errors)


def problem_response(
    problem: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem, status_code=problem["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


_STATUS_CODES = {
    400: ("bad_request", N_("Bad request")),
    401: ("not_authenticated", N_("Not authenticated")),
    403: ("forbidden", N_("Forbidden")),
    404: ("not_found", N_("Not found")),
    405: ("method_not_allowed", N_("Method not allowed")),
    406: ("not_acceptable", N_("Not acceptable")),
    413: ("payload_too_large", N_("Payload too large")),
    415: ("unsupported_media_type", N_("Unsupported media type")),
}
# Starlette's details of the errors it raises itself (an unknown path or method).
_STARLETTE_DETAILS = (N_("Not Found"), N_("Method Not Allowed"))


# PostgreSQL's answers to contention (asyncpg's names for SQLSTATE 40P01, 40001, 55P03).
_BUSY = {"DeadlockDetectedError", "SerializationError", "LockNotAvailableError"}
_UNSTORABLE_TEXT = {"CharacterNotInRepertoireError", "UntranslatableCharacterError"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem_response(exc.problem(instance=request.url.path), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = err.get("loc", ())
            kind = err.get("type", "invalid")
            if kind == "json_invalid":
                # FastAPI reports the character offset as the location; the field is the body.
                position = loc[1] if len(loc) > 1 else "?"
                message = Text(
                    "request body is not valid JSON ({error} at character {position})",
                    error=err.get("ctx", {}).get("error", ""),
                    position=position,
                )
                errors.append(FieldError.of("body", message, type=kind))
                continue
            errors.append(_field_error_of(_field_path(loc), {"msg": "invalid value", **err}))
        return problem_response(invalid_fields(errors).problem(instance=request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI answers 400 to a JSON body that is not UTF-8: the fault of invalid JSON.
            error = FieldError.of(
                "body", Text("request body is not valid JSON (not UTF-8)"), type="json_invalid"
            )
            return problem_response(invalid_fields([error]).problem(instance=request.url.path))
        code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        body = {
            "type": PROBLEM_BASE + code.replace("_", "-"),
            "title": translate(title, current_language()),
            "status": exc.status_code,
            "detail": translate(str(exc.detail), current_language()),
            "instance": request.url.path,
            "code": code,
            "retryable": exc.status_code >= 500,
        }
        # The body middleware answers 413 itself; a 413 raised elsewhere names the same limit.
        limit = getattr(request.state, "max_body_bytes", None)
        if exc.status_code == 413 and limit is not None:
            body["limit_bytes"] = limit
        return problem_response(body, headers=dict(exc.headers or {}))

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # PostgreSQL refuses text it cannot store (a NUL character): the input's fault, not ours.
        causes = {type(exc.orig).__name__, type(getattr(exc.orig, "__cause__", None)).__name__}
        if causes & _BUSY or "database is locked" in str(exc.orig):
            # Contention, not a fault: the same request may succeed a moment later.
            body = {
                "type": PROBLEM_BASE + "busy",
                "title": translate(N_("Busy"), current_language()),
                "status": 503,
                "detail": Text(
                    "the database is busy with other writes; retry in a moment"
                ).render(),
                "instance": request.url.path,
                "code": "busy",
                "retryable": True,
            }
            log.warning("database busy: %s", type(exc.orig).__name__)
            return problem_response(body, headers={"Retry-After": "2"})
        if causes & _UNSTORABLE_TEXT:
            problem = InvalidCharacter(
                Text("the request contains a character that cannot be stored (e.g. NUL, \\u0000)")
            ).problem(instance=request.url.path)
            return problem_response(problem)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None)
        log.exception("unhandled error (request %s)", request_id)
        # Rendered outside the language middleware too: negotiate here.
        language = negotiate(request.headers.get("accept-language"))
        with using_language(language):
            body = {
                "type": PROBLEM_BASE + "internal-error",
                "title": translate(N_("Internal server error"), language),
                "status": 500,
                "detail": Text("an unexpected error occurred; it has been logged").render(),
                "instance": request.url.path,
                "code": "internal_error",
                "retryable": True,
                "request_id": request_id,
            }
        # Rendered outside the request-id middleware: echo the id here.
        response = problem_response(
            body, headers={"X-Request-ID": request_id} if request_id else None
        )
        language_headers(language, response.headers)
        return response


def problem_responses(
    *statuses: int, described: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem documents for the given statuses
    (`described` overrides the generic description of a status)."""
    descriptions = {
        400: "Malformed request",
        401: "Missing, expired or invalid access token",
        403: "The caller's role does not allow this",
        404: "Not found, or not visible to the caller",
        409: "Conflicts with the current state",
        410: "Gone: the resource (e.g. a sync cursor) can no longer be served",
        412: "If-Match does not match the current ETag",
        413: "Request body larger than the limit (`limit_bytes`), counted after gzip inflation",
        415: "Content-Encoding other than gzip or identity",
        422: "Invalid input; `errors` names each offending field",
        416: "The Range lies outside the content",
        428: "If-Match header required",
        460: "Checksum mismatch (tus): the bytes do not match their announced checksum",
    } | (described or {})
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
