"""Where the app is assembled: what follows from each event, and what core is handed.

Domain packages publish events and declare ports; this module alone connects them, so that
records, households and sync know nothing of photos or webhooks, and core knows no domain.
Every entry point (the API app, the CLI, the tests, the benchmarks) calls `assemble()` before
it opens a session; `app.core.db.make_sessionmaker` refuses to work before it.
"""

from __future__ import annotations

from typing import Any

from app.audit import capture as audit_capture
from app.audit import service as audit_service
from app.auth.events import SignInAttempted
from app.clients.models import ApiClient
from app.core import db, events
from app.devices.models import Device
from app.households import exit_rule
from app.households.events import HouseholdStatusChanged
from app.households.models import Household, Member
from app.monitoring.events import CaseCleared, CaseIdentified
from app.monitoring.models import IncomeExclusion, MonitoringAlert, MonitoringCase, MonitoringStep
from app.photos import refs as photo_refs
from app.photos.backlog import PhotoBacklogQueries
from app.photos.events import PhotoStored
from app.photos.models import Photo
from app.progress import figures as progress_figures
from app.progress import household as household_progress
from app.progress import region as region_progress
from app.records import service as records_service
from app.records.events import RecordWriting, RecordWritten
from app.records.models import IncomeSnapshot, Measure, Visit
from app.regions.models import Region
from app.sync import changelog, photo_backlog
from app.sync.events import BatchReceived
from app.sync.models import HeldRecord, SyncConflict
from app.thresholds.models import PovertyThreshold
from app.users.models import User, UserRegion, UserRegionEnded
from app.webhooks import emit as webhooks_emit
from app.webhooks import triggers as webhooks_triggers
from app.webhooks.models import Webhook

# What the audit log records (every insert, change and delete of these tables; see
# app.audit.capture), by the name its entries give them. Not audited: what follows from these
# (the change log, webhook outbox, measure history, figures) and the sign-in machinery (tokens,
# whose attempts are audited as sign-ins).
AUDITED: dict[type[Any], audit_capture.Audited] = {
    Household: audit_capture.Audited("household", region="village_code"),
    Member: audit_capture.Audited("member", masks={"name": audit_capture.mask_name}),
    Visit: audit_capture.Audited("visit"),
    IncomeSnapshot: audit_capture.Audited("income_snapshot"),
    Measure: audit_capture.Audited("measure"),
    MonitoringCase: audit_capture.Audited("monitoring_case"),
    MonitoringStep: audit_capture.Audited("monitoring_step"),
    MonitoringAlert: audit_capture.Audited("monitoring_alert", region="village_code"),
    IncomeExclusion: audit_capture.Audited("income_exclusion"),
    SyncConflict: audit_capture.Audited("sync_conflict", region="village_code"),
    HeldRecord: audit_capture.Audited("held_record", region="village_code"),
    Photo: audit_capture.Audited("photo"),
    User: audit_capture.Audited("user"),
    UserRegion: audit_capture.Audited("user_region", region="region_code"),
    UserRegionEnded: audit_capture.Audited("user_region_ended", region="region_code"),
    ApiClient: audit_capture.Audited("api_client", region="region_code"),
    Device: audit_capture.Audited(
        "device", quiet=frozenset({"last_seen_at", "last_sync_at", "app_version"})
    ),
    Webhook: audit_capture.Audited("webhook", region="region_code"),
    Region: audit_capture.Audited("region", region="code"),
    PovertyThreshold: audit_capture.Audited("poverty_threshold", region="scope"),
}


def assemble() -> None:
    """Connect the app's parts (idempotent)."""
    # The sync change log: every flush of a numbered table, in the same transaction.
    changelog.install()
    # The audit log: every write of an audited table, appended to the chain at commit.
    audit_capture.install(AUDITED)
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
    events.subscribe(SignInAttempted, audit_service.on_sign_in)
    db.mark_assembled()
