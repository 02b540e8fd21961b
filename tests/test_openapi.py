"""openapi/openapi.json is the published contract: it must be what the app serves."""

from __future__ import annotations

import json

from app.core.migrations import PROJECT_ROOT
from app.openapi import openapi_json

PUBLISHED = PROJECT_ROOT / "openapi" / "openapi.json"


def test_published_document_matches_the_app() -> None:
    served = json.loads(openapi_json())
    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    assert served == published, "openapi/openapi.json is stale: run `make openapi` and commit it"


async def test_served_document_is_the_published_one(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(PUBLISHED.read_text(encoding="utf-8"))


def test_every_operation_is_documented() -> None:
    document = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            op_id = operation.get("operationId")
            assert op_id and op_id not in seen, f"{where}: missing or repeated operationId"
            seen.add(op_id)
            assert operation.get("tags"), f"{where}: no tag"
            assert operation.get("summary"), f"{where}: no summary"
            assert operation.get("description"), f"{where}: no description"
            # The token endpoints and tus discovery (declared `security: []`) are public.
            public = path.startswith("/api/v1/auth/") or operation.get("security") == []
            if path.startswith("/api/v1/") and not public:
                assert "401" in operation["responses"], f"{where}: 401 not documented"
                problem = operation["responses"]["401"]["content"]
                assert "application/problem+json" in problem, (
                    f"{where}: 401 is not a problem document"
                )
