"""The shape of the app (issue 15): the import rules of pyproject.toml's [tool.importlinter].

Core knows no domain; records, households and sync know neither photos nor webhooks (what
follows from a write is a subscriber of its event, connected in app.wiring); the phone simulator
talks to the server over HTTP only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout, result.stdout


def test_every_event_published_has_a_subscriber() -> None:
    """An event nobody subscribes to is a side effect lost in the wiring."""
    from app.core import events
    from app.households.events import HouseholdStatusChanged
    from app.monitoring.events import CaseCleared, CaseIdentified
    from app.records.events import RecordWriting, RecordWritten
    from app.sync.events import BatchReceived
    from app.wiring import assemble

    assemble()
    for event_type in (
        RecordWriting,
        RecordWritten,
        HouseholdStatusChanged,
        CaseIdentified,
        CaseCleared,
        BatchReceived,
    ):
        assert events.subscribers_of(event_type), event_type
