"""The published contract is complete enough to generate clients from and to integrate against.

Every operation of openapi/openapi.json has a stable operationId, a summary, a description and
tags; JSON requests and 2xx JSON responses carry an example that validates against their schema;
errors are documented as problem documents (401 where a token is needed, 422 where there is
input); and the security schemes (OAuth2 password and client credentials) declare their scopes,
which each authenticated operation names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.auth.principal import CLIENT_SCOPES, ROLE_SCOPES
from tests.test_openapi import PUBLISHED

DOCUMENT: dict[str, Any] = json.loads(PUBLISHED.read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM = "application/problem+json"
TOKEN_URL = "/api/v1/auth/token"
# The token endpoints answer RFC 6749 §5.2 error documents, not problem+json.
OAUTH_PATHS = ("/api/v1/auth/token", "/api/v1/auth/revoke")
# What an API client may POST: a search (the ID number goes in the body) and its own webhooks.
CLIENT_WRITES = ("/api/v1/households/search", "/api/v1/webhooks")
# Operations that need no particular scope: the caller itself, and webhooks (whose scopes
# depend on the event types subscribed to, checked in the service).
SCOPED_INSIDE = ("/api/v1/me", "/api/v1/webhooks", "/api/v1/vocabulary")
OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")  # verb_noun, snake case


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


OPERATIONS = list(_operations())
IDS = [f"{method.upper()} {path}" for path, method, _ in OPERATIONS]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = DOCUMENT["components"]["schemas"][name]
    return schema


def _examples(media: dict[str, Any]) -> list[Any]:
    """The examples of a media type object, or else of its (resolved) schema."""
    if "example" in media:
        return [media["example"]]
    if media.get("examples"):
        return [example["value"] for example in media["examples"].values()]
    schema = _resolve(media.get("schema", {}))
    if "example" in schema:
        return [schema["example"]]
    if schema.get("type") == "array" and "examples" not in schema:
        # A list's example: one item's.
        return [[item] for item in _examples({"schema": schema["items"]})]
    return list(schema.get("examples", []))


def _validate(schema: dict[str, Any], example: Any) -> list[str]:
    """The ways `example` breaks `schema` (whose refs point into the document)."""
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; their refs resolve within this root.
    validator = Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(example)
    ]


def _json_media(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        media_type: media
        for media_type, media in content.items()
        if media_type == "application/json" or media_type.endswith("+json")
    }


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_operation_is_named_and_described(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    declared_tags = {tag["name"] for tag in DOCUMENT["tags"]}
    assert OPERATION_ID.match(operation.get("operationId", "")), "operationId is not verb_noun"
    assert operation.get("summary"), "no summary (the docstring's first line)"
    assert operation.get("description"), "no description (the docstring)"
    assert operation.get("tags"), "no tags"
    assert set(operation["tags"]) <= declared_tags, "a tag the document does not describe"


def test_operation_ids_are_unique() -> None:
    ids = [operation["operationId"] for _, _, operation in OPERATIONS]
    assert len(ids) == len(set(ids))


def example_problems(operation: dict[str, Any]) -> list[str]:
    """What is wrong with the examples of an operation's JSON request and responses."""
    request = operation.get("requestBody", {}).get("content", {})
    bodies = [("request", media) for media in _json_media(request).values()]
    for status, response in operation["responses"].items():
        if status.startswith(("2", "4")):
            for media in _json_media(response.get("content", {})).values():
                bodies.append((f"response {status}", media))
    problems: list[str] = []
    for where, media in bodies:
        examples = _examples(media)
        if not examples:
            problems.append(f"{where}: no example")
        for example in examples:
            problems.extend(f"{where}: {error}" for error in _validate(media["schema"], example))
    return problems


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_json_bodies_have_valid_examples(path: str, method: str, operation: dict[str, Any]) -> None:
    assert example_problems(operation) == []


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_errors_are_documented(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    has_input = bool(operation.get("parameters") or operation.get("requestBody"))
    if path in OAUTH_PATHS:
        assert "400" in responses, "RFC 6749 errors (400) not documented"
        return
    if operation.get("security"):
        assert "401" in responses, "401 not documented"
    if has_input:
        assert "422" in responses, "422 (invalid input) not documented"
    for status, response in responses.items():
        if status.startswith(("4", "5")) and method != "head" and status != "503":
            assert set(response.get("content", {})) == {PROBLEM}, (
                f"{status} is not documented as a problem document"
            )


def test_security_schemes_declare_both_flows_and_every_scope() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    flows = {
        flow_name: flow
        for scheme in schemes.values()
        if scheme["type"] == "oauth2"
        for flow_name, flow in scheme["flows"].items()
    }
    assert set(flows) == {"password", "clientCredentials"}
    assert {flow["tokenUrl"] for flow in flows.values()} == {TOKEN_URL}
    every_scope = {scope for scopes in ROLE_SCOPES.values() for scope in scopes}
    assert set(flows["password"]["scopes"]) == every_scope
    assert set(flows["clientCredentials"]["scopes"]) == set(CLIENT_SCOPES)
    assert all(flows["password"]["scopes"].values()), "a scope without a description"


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_operation_names_its_scopes(path: str, method: str, operation: dict[str, Any]) -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    public = path in OAUTH_PATHS or not path.startswith("/api/v1/") or path == "/api/v1/uploads"
    if public and method in ("post", "get", "options") and path != "/api/v1/uploads":
        assert "security" not in operation or operation["security"] == []
        return
    if method == "options":
        assert operation.get("security") == [], "tus discovery is public"
        return
    requirements = operation.get("security")
    assert requirements, "no security requirement"
    for requirement in requirements:
        for name, scopes in requirement.items():
            assert name in schemes, f"unknown security scheme {name}"
            (flow,) = schemes[name]["flows"].values()
            assert set(scopes) <= set(flow["scopes"]), f"{name}: undeclared scopes {scopes}"
    names = {name for requirement in requirements for name in requirement}
    if method in ("post", "put", "patch", "delete") and not path.startswith(CLIENT_WRITES):
        assert "OAuth2ClientCredentials" not in names, "API clients are read-only"
    if not path.startswith(SCOPED_INSIDE):
        assert all(requirement[n] for requirement in requirements for n in requirement), (
            "an authenticated operation should name the scopes it needs"
        )


# --- every example, and every record inside one -------------------------------------------------

# Where each record type's own schemas are: its PUT body (a batch's data, with the item's
# revision) and its GET answer (a change's data in the feed).
RECORD_PATHS = {
    "visit": "/api/v1/visits/{visit_id}",
    "income_snapshot": "/api/v1/income-snapshots/{snapshot_id}",
    "measure": "/api/v1/measures/{measure_id}",
    "monitoring_case": "/api/v1/monitoring-cases/{case_id}",
    "household": "/api/v1/households/{household_id}",
}


def _record_schemas(record_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema of what a phone sends for `record_type` and of what the API answers."""
    item = DOCUMENT["paths"][RECORD_PATHS[record_type]]
    write = item["patch" if record_type == "household" else "put"]
    sent = write["requestBody"]["content"]["application/json"]["schema"]
    answered = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return sent, answered


def _all_examples() -> Iterator[tuple[str, Any]]:
    """Every example in the document, with where it is."""
    for name, schema in DOCUMENT["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples", [])):
            yield f"components.schemas.{name}.examples[{i}]", example
    for path, method, operation in OPERATIONS:
        where = f"{method.upper()} {path}"
        for parameter in operation.get("parameters", []):
            for i, example in enumerate(parameter.get("schema", {}).get("examples", [])):
                yield f"{where} parameter {parameter['name']}[{i}]", example
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(f"response {code}", answer) for code, answer in operation["responses"].items()]
        for label, part in bodies:
            for media_type, media in _json_media(part.get("content", {})).items():
                for i, example in enumerate(_examples(media)):
                    yield f"{where} {label} {media_type}[{i}]", example


def _records_in(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The batch items and feed changes inside an example: objects naming a record type and
    carrying its `data` (or a household edit's `changes`)."""
    if isinstance(value, dict):
        if value.get("type") in RECORD_PATHS and ("data" in value or "changes" in value):
            yield where, value
        for key, item in value.items():
            yield from _records_in(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _records_in(item, f"{where}[{i}]")


def test_every_schema_example_is_valid() -> None:
    problems = []
    for name, schema in DOCUMENT["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples", [])):
            problems += [f"{name}[{i}] {error}" for error in _validate(schema, example)]
    assert problems == []


def test_every_record_inside_an_example_is_valid_for_its_record_type() -> None:
    """A batch's `data` is free-form to the batch schema, so its own record type's schema judges
    it (the published batch example once sent `mode: "home"` and a flat `check_housing`)."""
    problems = []
    checked: set[tuple[str, str]] = set()
    for where, example in _all_examples():
        for at, record in _records_in(example, where):
            sent, answered = _record_schemas(record["type"])
            if "op" in record:  # a change of the feed: the record as the API answers it
                kind, body, schema = "answer", record["data"], answered
                if body is None:  # a deletion
                    continue
            elif record["type"] == "household":  # a household edit: the PATCH body
                kind, body, schema = "edit", record["changes"], sent
            else:  # a batch item: the PUT body, with the item's revision
                kind, body, schema = (
                    "write",
                    {**record["data"], "revision": record["revision"]},
                    sent,
                )
            checked.add((record["type"], kind))
            problems += [f"{at}: {error}" for error in _validate(schema, body)]
    assert problems == []
    # The batch example carries one record of every type (and the test saw them).
    writes = {t for t, kind in checked if kind in ("write", "edit")}
    assert writes == set(RECORD_PATHS), writes


def test_a_bad_record_inside_an_example_is_found() -> None:
    """The check above can fail: the old example's visit breaks the visit schema."""
    sent, _ = _record_schemas("visit")
    old = {
        "household_id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
        "visited_at": "2026-11-20T09:30:00+08:00",
        "mode": "home",
        "check_housing": "ok",
        "revision": 1,
    }
    problems = _validate(sent, old)
    assert any("mode" in p for p in problems) and any("check_housing" in p for p in problems)
