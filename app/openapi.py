"""The OpenAPI document: summaries from docstrings, problem+json for every error response."""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.openapi import utils as openapi_utils
from fastapi.openapi.utils import get_openapi

from app.auth.deps import REQUIREMENTS
from app.auth.principal import CLIENT_SCOPES, ROLE_SCOPES
from app.core.errors import PROBLEM_MEDIA_TYPE
from app.users.models import Role

TOKEN_URL = "/api/v1/auth/token"
PASSWORD_SCHEME = "OAuth2Password"  # the scheme_name of app.auth.deps.oauth2_scheme
CLIENT_SCHEME = "OAuth2ClientCredentials"
SCOPE_DESCRIPTIONS = {
    "households:read": "Households and their members, regions, thresholds",
    "records:read": "Visits, income snapshots, support measures, a household's timeline",
    "progress:read": "Household and region progress, data quality, exports",
    "photos:read": "Photos, their thumbnails and content",
    "sync:read": "Sync status, conflicts, devices, the change feed",
    "pii:read": "ID numbers, phones and exact positions in full (unmasked)",
    "households:write": "Record visits, snapshots, measures and monitoring cases; edit households "
    "and members",
    "monitoring:write": "Take the steps of a monitoring case by role; import and verify "
    "department alerts",
    "regions:write": "Divisions and thresholds (county admins)",
    "users:write": "Accounts and API clients (county admins)",
}

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
            responses["422"] = _validation_problem(responses["422"])


def _validation_problem(declared: dict[str, Any]) -> dict[str, Any]:
    """The 422 problem, keeping the route's own description and example when it gives them."""
    problem: dict[str, Any] = copy.deepcopy(_VALIDATION_PROBLEM)
    description = declared.get("description")
    if description and description not in ("Validation Error", problem["description"]):
        problem["description"] = description
    example = declared.get("content", {}).get(PROBLEM_MEDIA_TYPE, {}).get("example")
    if example is not None:
        problem["content"][PROBLEM_MEDIA_TYPE]["example"] = example
    return problem


def _security(dependant: Dependant) -> list[dict[str, list[str]]] | None:
    """The security requirement of an operation: the scopes its dependencies check, by the
    password flow and (when an API client may call it) the client_credentials flow."""
    authenticated = False
    roles: set[Role] = set()
    scopes: list[str] = []
    pending = list(dependant.dependencies)
    while pending:
        sub = pending.pop(0)
        pending.extend(sub.dependencies)
        name = getattr(sub.call, "__qualname__", "")
        authenticated = authenticated or name in ("get_principal", "get_principal_briefly")
        found = REQUIREMENTS.get(sub.call) if sub.call is not None else None
        if found is not None:
            roles.update(found.roles)
            scopes.extend(s for s in found.scopes if s not in scopes)
    if not authenticated:
        return None
    requirement = [{PASSWORD_SCHEME: scopes}]
    if (not roles or Role.api_client in roles) and set(scopes) <= set(CLIENT_SCOPES):
        requirement.append({CLIENT_SCHEME: scopes})
    return requirement


def _security_schemes() -> dict[str, Any]:
    every = {s for granted in ROLE_SCOPES.values() for s in granted}
    described = {s: d for s, d in SCOPE_DESCRIPTIONS.items() if s in every}
    return {
        PASSWORD_SCHEME: {
            "type": "oauth2",
            "description": "Officers, first secretaries and county admins log in with username "
            "and password (`grant_type=password`, RFC 6749 §4.3); refresh tokens rotate. A "
            "token carries its role's scopes, or fewer when `scope` asks for fewer.",
            "flows": {
                "password": {"tokenUrl": TOKEN_URL, "refreshUrl": TOKEN_URL, "scopes": described}
            },
        },
        CLIENT_SCHEME: {
            "type": "oauth2",
            "description": "Third-party apps registered by a county admin (`POST /api/v1/clients`)"
            " authenticate with HTTP Basic (`client_id:client_secret`) or the form "
            "(`grant_type=client_credentials`, RFC 6749 §4.4): read-only, one region, the "
            "scopes granted at registration.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": TOKEN_URL,
                    "scopes": {s: d for s, d in described.items() if s in CLIENT_SCOPES},
                }
            },
        },
    }


def _declare_security(app: FastAPI, document: dict[str, Any]) -> None:
    """Security schemes with their scopes, and each operation's required scopes."""
    for route in routing.iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        path = document["paths"].get(getattr(route, "path_format", None) or "")
        if dependant is None or path is None:
            continue
        security = _security(dependant)
        for method in route.methods or ():
            operation = path.get(method.lower())
            if operation is not None and security is not None:
                operation["security"] = security
    document.setdefault("components", {})["securitySchemes"] = _security_schemes()


def _restore_example_nulls(app: FastAPI, document: dict[str, Any]) -> None:
    """Put back the nulls of the models' examples.

    FastAPI renders the document with `exclude_none`, which also drops every null inside an
    example; a response example would then lack the nullable fields its schema requires (every
    field of an output schema is required). The definitions are computed again, as get_openapi
    does, and their examples copied over with their nulls.
    """
    fields = openapi_utils.get_fields_from_routes(list(app.routes))
    flat_models = openapi_utils.get_flat_models_from_fields(fields, known_models=set())
    _, definitions = openapi_utils.get_definitions(
        fields=fields,
        model_name_map=openapi_utils.get_model_name_map(flat_models),
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if "examples" in definitions.get(name, {}):
            schema["examples"] = jsonable_encoder(definitions[name]["examples"])


def _page_examples(document: dict[str, Any]) -> None:
    """Give each page schema (`Page[X]`) an example: a page of X's example."""
    schemas = document.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if not name.startswith("Page_") or "examples" in schema:
            continue
        ref = schema["properties"]["items"]["items"].get("$ref", "")
        item = schemas.get(ref.removeprefix("#/components/schemas/"), {})
        if item.get("examples"):
            schema["examples"] = [
                {"items": item["examples"][:1], "next_cursor": "WyIyMDI2LTExLTIwVDA4OjMwOjAwWiJd"}
            ]


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
        _declare_security(app, document)
        _restore_example_nulls(app, document)
        _page_examples(document)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_json() -> str:
    from app.main import create_app

    app = create_app()
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
