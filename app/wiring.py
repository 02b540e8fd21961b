"""Where the app is assembled: what follows from each event, and what core is handed.

Domain packages publish events and declare ports; this module alone connects them, so that
records, households and sync know nothing of photos or webhooks, and core knows no domain.
Every entry point (the API app, the CLI, the tests, the benchmarks) calls `assemble()` before
it opens a session; `app.core.db.make_sessionmaker` refuses to work before it.
"""

from __future__ import annotations

from app.core import db, events
from app.households import exit_rule
from app.households.events import HouseholdStatusChanged
from app.monitoring.events import CaseCleared, CaseIdentified
from app.photos import refs as photo_refs
from app.photos.backlog import PhotoBacklogQueries
from app.photos.events import PhotoStored
from app.progress import figures as progress_figures
from app.progress import household as household_progress
from app.progress import region as region_progress
from app.records import service as records_service
from app.records.events import RecordWriting, RecordWritten
from app.sync import changelog, photo_backlog
from app.sync.events import BatchReceived
from app.webhooks import emit as webhooks_emit
from app.webhooks import triggers as webhooks_triggers


def assemble() -> None:
    """Connect the app's parts (idempotent)."""
    # The sync change log: every flush of a numbered table, in the same transaction.
    changelog.install()
    photo_backlog.photo_backlog.provide(PhotoBacklogQueries())
    exit_rule.exit_reasons.provide(household_progress.exit_reasons)
    region_progress.child_sums.provide(progress_figures.child_sums)

    # Subscribers, in the order they run.
    events.subscribe(RecordWriting, webhooks_triggers.on_record_writing)
    events.subscribe(RecordWritten, photo_refs.on_record_written)
    events.subscribe(RecordWritten, records_service.keep_measure_history)
    events.subscribe(RecordWritten, webhooks_triggers.on_record_written)
    events.subscribe(HouseholdStatusChanged, webhooks_emit.on_household_status_changed)
    events.subscribe(CaseIdentified, webhooks_emit.on_case_identified)
    events.subscribe(CaseCleared, webhooks_emit.on_case_cleared)
    events.subscribe(BatchReceived, webhooks_emit.on_batch_received)
    events.subscribe(PhotoStored, progress_figures.on_photo_stored)
    db.mark_assembled()
