"""Every table's model, imported once: the metadata Alembic and the tests use."""

from app.audit.models import AuditEntry
from app.auth.models import RefreshToken, TokenFamily
from app.clients.models import ApiClient
from app.core.base import metadata
from app.devices.models import Device
from app.households.models import Household, HouseholdChange, Member
from app.monitoring.models import (
    IncomeExclusion,
    MonitoringAlert,
    MonitoringCase,
    MonitoringStep,
)
from app.photos.models import Photo, PhotoHolder, PhotoRef, Upload, UploadPart
from app.progress.models import VillageStamp
from app.records.models import (
    IncomeSnapshot,
    Measure,
    MeasureRevision,
    Visit,
)
from app.regions.models import Region
from app.sync.models import Change, ChangeCounter, HeldRecord, SyncBatch, SyncConflict
from app.thresholds.models import PovertyThreshold
from app.users.models import User, UserRegion, UserRegionEnded
from app.webhooks.models import Webhook, WebhookDelivery, WebhookEvent

__all__ = [
    "ApiClient",
    "AuditEntry",
    "Change",
    "ChangeCounter",
    "Device",
    "HeldRecord",
    "Household",
    "HouseholdChange",
    "IncomeExclusion",
    "IncomeSnapshot",
    "Measure",
    "MeasureRevision",
    "Member",
    "MonitoringAlert",
    "MonitoringCase",
    "MonitoringStep",
    "Photo",
    "PhotoHolder",
    "PhotoRef",
    "PovertyThreshold",
    "RefreshToken",
    "Region",
    "SyncBatch",
    "SyncConflict",
    "TokenFamily",
    "Upload",
    "UploadPart",
    "User",
    "UserRegion",
    "UserRegionEnded",
    "VillageStamp",
    "Visit",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
    "metadata",
]
