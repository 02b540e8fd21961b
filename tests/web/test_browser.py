"""The county web app in Debian's headless chromium (issue 16, acceptance 1 and 3).

One real server for the module; each test signs in in a fresh browser context. Every page
visited is watched: a request to any host but the server, a script error or a CSP violation
fails the test. Each view leaves a screenshot in build/screenshots (FIELDSYNC_SCREENSHOT_DIR).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.builders import PASSWORD
from tests.records.bodies import visit_body
from tests.sync.helpers import batch, record
from tests.web.browser import Watch, launched, screenshot
from tests.web.site import IMG_FINDINGS, SCRIPT_NAME, Site, served_site

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with served_site(tmp_path_factory.mktemp("web")) as served:
        yield served


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    with launched() as chromium:
        yield chromium


class Visitor:
    """One person's browser: a context of its own, signed in, every page watched."""

    def __init__(self, browser: Any, site: Site, who: str) -> None:
        self.site = site
        self.context = browser.new_context(
            viewport={"width": 1366, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        self.page = self.context.new_page()
        self.watch = Watch(self.page, site.base)
        self.page.goto(f"{site.base}/")
        self.page.fill("input[name=username]", site.username(who))
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/login" not in url)

    def open(self, path: str) -> Any:
        response = self.page.goto(f"{self.site.base}{path}")
        self.page.wait_for_load_state("networkidle")
        return response

    def close(self) -> None:
        self.watch.assert_clean()
        self.context.close()


@pytest.fixture
def admin(browser: Any, site: Site) -> Iterator[Visitor]:
    visitor = Visitor(browser, site, "admin")
    yield visitor
    visitor.close()


def test_sign_in_and_every_view_renders_offline(admin: Visitor, site: Site) -> None:
    views = {
        "sync": "/sync",
        "progress-county": "/progress",
        "progress-village": f"/progress/{371522101201}",
        "households": "/households",
        "monitoring": "/monitoring",
        "quality": "/quality",
        "conflicts": "/conflicts",
        "report": "/reports/monthly",
        "admin-users": "/admin/users",
        "admin-clients": "/admin/clients",
        "admin-webhooks": "/admin/webhooks",
        "admin-import": "/admin/import",
    }
    for name, path in views.items():
        response = admin.open(path)
        assert response.status == 200, (path, response.status)
        assert admin.page.locator("header.top").is_visible()
        screenshot(admin.page, name)
    # The county page's charts are drawn (ECharts, shipped with the app), on a tablet too.
    admin.open("/progress")
    assert admin.page.locator("[data-chart][data-drawn=true]").count() >= 4
    admin.page.set_viewport_size({"width": 800, "height": 1280})
    admin.page.wait_for_timeout(300)
    screenshot(admin.page, "progress-tablet")
    admin.page.set_viewport_size({"width": 1366, "height": 900})
    # The monthly summary prints without the app's header and buttons.
    admin.open("/reports/monthly")
    admin.page.emulate_media(media="print")
    assert not admin.page.locator("header.top").is_visible()
    assert admin.page.locator("article.report h1").is_visible()
    screenshot(admin.page, "report-print")
    admin.page.emulate_media(media="screen")
    # The API documentation works offline too: its scripts ship with the package.
    for path, ready in (("/docs", ".swagger-ui .info"), ("/redoc", ".redoc-wrap .menu-content")):
        admin.open(path)
        admin.page.wait_for_selector(ready, timeout=20_000)
        screenshot(admin.page, path.strip("/"))
        admin.watch.assert_foreign_blocked()


def test_a_phones_sync_appears_without_reloading(admin: Visitor, site: Site) -> None:
    admin.open("/sync")
    admin.page.evaluate("window.__same_page = true")
    device = f"android-{uuid.uuid4().hex[:8]}"
    assert admin.page.locator(f"tr[data-device='{device}']").count() == 0

    with site.api("officer_a1", device) as phone:
        body = batch(
            [record("visit", uuid.uuid4(), visit_body(site.household_a1))], device_id=device
        )
        answer = phone.post("/sync/batches", json=body)
        assert answer.status_code == 200, answer.text

    row = admin.page.locator(f"tr[data-device='{device}']")
    row.wait_for(timeout=20_000)
    assert admin.page.evaluate("window.__same_page") is True  # no reload happened
    assert "新增 1" in row.inner_text()
    screenshot(admin.page, "sync-live")


def test_a_household_shows_its_income_chart_and_photos(admin: Visitor, site: Site) -> None:
    admin.open(f"/households/{site.household_a1}")
    page = admin.page
    page.wait_for_selector("[data-chart=chart-income][data-drawn=true]")
    # Before and after, side by side, served through the API as this person may see them.
    pair = page.locator(".pair img")
    assert pair.count() == 2
    for index, tag in enumerate(("before", "after")):
        assert site.photos[tag] in (pair.nth(index).get_attribute("src") or "")
        assert page.evaluate(
            "(img) => img.complete && img.naturalWidth > 0", pair.nth(index).element_handle()
        )
    # What people typed stays text: no script ran, the markup shows as written.
    assert page.evaluate("window.__xss") is None
    assert page.locator("#head-name").inner_text().startswith(SCRIPT_NAME)
    assert IMG_FINDINGS in page.locator("#timeline").inner_text()
    screenshot(page, "household")


def test_approving_a_monitoring_step(admin: Visitor, site: Site) -> None:
    admin.open("/monitoring")
    row = admin.page.locator(f"tr[data-case='{site.case_id}']")
    row.locator("input[name=note]").fill("县级审批同意")
    row.locator("button[value=approve]").click()
    admin.page.wait_for_selector(".notice.ok")
    assert admin.page.locator(f"tr[data-case='{site.case_id}']").count() == 0
    with site.api("admin") as api:
        case = api.get(f"/monitoring-cases/{site.case_id}").json()
    assert case["status"] == "identified"
    assert case["steps"][-1]["note"] == "县级审批同意"


def test_resolving_a_conflict(admin: Visitor, site: Site) -> None:
    admin.open("/conflicts")
    card = admin.page.locator(f"[data-conflict='{site.conflict_id}']")
    screenshot(admin.page, "conflicts-open")
    card.locator("button[value=client]").click()
    admin.page.wait_for_selector(".notice.ok")
    with site.api("admin") as api:
        conflict = api.get("/sync/conflicts", params={"status": "resolved"}).json()["items"]
        household = api.get(f"/households/{site.household_a1}").json()
    assert [c["id"] for c in conflict] == [site.conflict_id]
    assert household["phone"] == "13905350002"


def test_another_villages_officer_reaches_nothing_of_village_a1(browser: Any, site: Site) -> None:
    officer = Visitor(browser, site, "officer_a2")
    try:
        page = officer.page
        response = officer.open(f"/households/{site.household_a1}")
        assert response.status == 404
        assert SCRIPT_NAME not in page.content()
        for tag in ("before", "after"):
            photo = page.request.get(f"{site.base}/files/photos/{site.photos[tag]}/content")
            assert photo.status in (403, 404)
        export = page.request.get(f"{site.base}/files/exports/households.xlsx?region=371522101201")
        assert export.status in (403, 404)
        own = officer.open(f"/households/{site.household_a2}")
        assert own.status == 200
    finally:
        officer.context.close()


def test_a_form_posted_from_another_site_changes_nothing(browser: Any, site: Site) -> None:
    with site.api("admin") as api:
        before = api.get("/monitoring-cases", params={"awaiting_my_step": "true"}).json()
    visitor = Visitor(browser, site, "admin")
    try:
        attacker = "http://attacker.example"
        target = f"{site.base}/conflicts/{uuid.uuid4()}/resolve"
        steps = f"{site.base}/monitoring/cases/{site.case_id}/steps"
        visitor.page.route(
            f"{attacker}/**",
            lambda route: route.fulfill(
                content_type="text/html",
                body=(
                    f'<form id="f" method="post" action="{steps}">'
                    '<input name="step" value="county_approval">'
                    '<input name="decision" value="reject"></form>'
                    f'<form id="g" method="post" action="{target}">'
                    '<input name="choice" value="client"></form>'
                ),
            ),
        )
        visitor.page.goto(f"{attacker}/")
        with visitor.page.expect_navigation():
            visitor.page.evaluate("document.getElementById('f').submit()")
        assert "/monitoring" not in visitor.page.url or "done" not in visitor.page.url
    finally:
        visitor.context.close()
    with site.api("admin") as api:
        after = api.get("/monitoring-cases", params={"awaiting_my_step": "true"}).json()
    assert after == before


def test_every_answer_carries_the_security_headers_and_no_server_name(site: Site) -> None:
    import httpx

    for path, policy in (
        ("/healthz", "default-src 'none'; frame-ancestors 'none'"),
        ("/api/v1/nothing-here", "default-src 'none'; frame-ancestors 'none'"),
        ("/login", None),
    ):
        response = httpx.get(f"{site.base}{path}", timeout=30)
        assert "server" not in response.headers, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        if policy:
            assert response.headers["content-security-policy"] == policy
        else:
            assert "script-src 'self'" in response.headers["content-security-policy"]
