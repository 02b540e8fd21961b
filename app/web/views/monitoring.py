"""监测: the cases waiting for the signed-in person's step (approve, reject), the alerts to verify,
and a department's alert file, previewed before it is imported."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from app.web.pages import Uuid, WebDep
from app.web.security import CsrfChecked

router = APIRouter()

# Form fields the API bounds too; here they only keep a page's request small.
Note = Annotated[str, Form(max_length=2000)]


@router.get("/monitoring")
async def monitoring_page(web: WebDep) -> Response:
    waiting = await web.api.get("/api/v1/monitoring-cases", awaiting_my_step="true", limit=100)
    alerts = await web.api.get("/api/v1/monitoring/alerts", status="open", limit=100)
    me = await web.me()
    return await web.render(
        "monitoring.html",
        waiting=waiting["items"],
        alerts=alerts["items"],
        may_import=me["role"] == "county_admin",
    )


@router.post("/monitoring/cases/{case_id}/steps")
async def take_step(
    web: WebDep,
    _: CsrfChecked,
    case_id: Uuid,
    step: Annotated[str, Form(max_length=64)] = "",
    decision: Annotated[str, Form(max_length=16)] = "",
    note: Note = "",
    method: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    body = {"step": step, "decision": decision, "note": note or None}
    if method:
        body["method"] = method
    await web.api.call("POST", f"/api/v1/monitoring-cases/{case_id}/steps", json=body)
    return web.redirect("/monitoring?done=step")


@router.post("/monitoring/alerts/{alert_id}/verify")
async def verify_alert(
    web: WebDep,
    _: CsrfChecked,
    alert_id: Uuid,
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Note = "",
) -> Response:
    await web.api.call(
        "POST",
        f"/api/v1/monitoring/alerts/{alert_id}/verify",
        json={"outcome": outcome, "note": note or None},
    )
    return web.redirect("/monitoring?done=alert")


@router.post("/monitoring/alerts/import")
async def import_alerts(
    web: WebDep,
    _: CsrfChecked,
    file: Annotated[UploadFile, File()],
    apply: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Preview first (dry run); the page's second button imports the same file."""
    content = await file.read()
    report = await web.api.call(
        "POST",
        "/api/v1/monitoring/alerts/import",
        files={"file": (file.filename or "alerts", content, "application/octet-stream")},
        data={"dry_run": "false" if apply == "yes" else "true"},
    )
    return await web.render("_alert_report.html", report=report, filename=file.filename or "")
