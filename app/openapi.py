"""The published OpenAPI document, rendered deterministically."""

from __future__ import annotations

import json


def openapi_json() -> str:
    from app.main import create_app

    app = create_app()
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
