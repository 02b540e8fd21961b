"""The app's pages, assembled: every view's router, the static assets, the page policy."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.web.pages import HERE, install_page_errors
from app.web.security import PageHeadersMiddleware
from app.web.session import read_session
from app.web.views import admin, auth, households, monitoring, progress, quality, reports, sync

# The API's own paths (its clients are apps, not pages) and the documentation's.
API_PATHS = ("/api/", "/openapi.json", "/healthz", "/readyz")
DOCS_PATHS = ("/docs", "/redoc", "/static-offline-docs")

home = APIRouter()


@home.get("/")
async def start_page(request: Request) -> RedirectResponse:
    return RedirectResponse("/progress" if read_session(request) else "/login", status_code=303)


def install_web_app(app: FastAPI) -> None:
    """Serve the pages at `/`, beside the API; none of them is part of the OpenAPI document."""
    for router in (
        home,
        auth.router,
        sync.router,
        progress.router,
        households.router,
        monitoring.router,
        quality.router,
        reports.router,
        admin.router,
    ):
        app.include_router(router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="web-static")
    install_page_errors(app)
    app.add_middleware(PageHeadersMiddleware, api_prefixes=API_PATHS, docs_prefixes=DOCS_PATHS)
