"""Where each benchmark leaves its figures, for `bench/targets.py` to set against the targets.

One JSON file per benchmark in bench/results/; a benchmark that runs several configurations
one invocation at a time (`sync_ingest.py -c 1`, then `-c 8`) merges them by key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def save(name: str, value: Any) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def merge(name: str, key: str, value: Any) -> Path:
    """`value` under `key` in the benchmark's file, beside the keys other runs left there."""
    found = load(name)
    merged = found if isinstance(found, dict) else {}
    merged[key] = value
    return save(name, merged)


def load(name: str) -> Any | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
