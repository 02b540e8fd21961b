"""The /api/v1 router: every domain's routes."""

from fastapi import APIRouter

from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.clients.router import router as clients_router
from app.devices.router import router as devices_router
from app.exports.router import router as exports_router
from app.households.imports_router import router as household_imports_router
from app.households.router import router as households_router
from app.monitoring.alerts_router import router as alerts_router
from app.monitoring.router import router as monitoring_router
from app.photos.router import router as photos_router
from app.photos.uploads_router import router as uploads_router
from app.progress.household_router import router as household_progress_router
from app.progress.region_router import router as region_progress_router
from app.quality.router import router as quality_router
from app.records.router import router as records_router
from app.regions.router import router as regions_router
from app.sync.router import router as sync_router
from app.thresholds.router import router as thresholds_router
from app.users.router import router as users_router
from app.vocabulary.router import router as vocabulary_router
from app.webhooks.router import router as webhooks_router

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth_router)
api_router.include_router(regions_router)
api_router.include_router(households_router)
api_router.include_router(household_imports_router)
api_router.include_router(records_router)
api_router.include_router(monitoring_router)
api_router.include_router(alerts_router)
api_router.include_router(thresholds_router)
api_router.include_router(users_router)
api_router.include_router(devices_router)
api_router.include_router(clients_router)
api_router.include_router(sync_router)
api_router.include_router(uploads_router)
api_router.include_router(photos_router)
api_router.include_router(household_progress_router)
api_router.include_router(region_progress_router)
api_router.include_router(quality_router)
api_router.include_router(exports_router)
api_router.include_router(webhooks_router)
api_router.include_router(audit_router)
api_router.include_router(vocabulary_router)
