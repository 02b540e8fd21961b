"""The OpenAPI document: summaries from docstrings, problem+json for every error response."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.errors import PROBLEM_MEDIA_TYPE

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_VALIDATION_PROBLEM = {
    "description": "Invalid input; `errors` names each offending field",
    "content": {
        PROBLEM_MEDIA_TYPE: {
            "schema": _PROBLEM_REF,
            "example": {
                "type": "https://fieldsync.example/problems/validation-failed",
                "title": "Invalid input",
                "status": 422,
                "detail": "invalid input in: body.members.0.id_number",
                "code": "validation_failed",
                "retryable": False,
                "errors": [
                    {
                        "field": "body.members.0.id_number",
                        "message": "Value error, the check character of the ID number is wrong",
                        "type": "value_error",
                    }
                ],
            },
        }
    },
}


def _fix_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.get("responses", {})
    for status, response in responses.items():
        content = response.get("content", {})
        if status.startswith(("4", "5")) and PROBLEM_MEDIA_TYPE in content:
            content.pop("application/json", None)
    if "422" in responses:
        ref = responses["422"].get("content", {}).get("application/json", {}).get("schema", {})
        if ref.get("$ref", "").endswith("/HTTPValidationError") or PROBLEM_MEDIA_TYPE in responses[
            "422"
        ].get("content", {}):
            responses["422"] = _VALIDATION_PROBLEM


def install_openapi(app: FastAPI) -> None:
    """Replace app.openapi with a generator of the published contract."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            separate_input_output_schemas=app.separate_input_output_schemas,
        )
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                # The summary is the docstring's first line; the whole docstring is the description.
                if operation.get("description"):
                    operation["summary"] = (
                        operation["description"].strip().splitlines()[0].rstrip(".")
                    )
                _fix_errors(operation)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
