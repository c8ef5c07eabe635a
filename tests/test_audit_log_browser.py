"""The audit log in real Chromium: htmx filtering keeps the state in the URL; back and reload work."""

import os
import shutil
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from .factories import audit_attempt

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
    ),
]


def _search(page) -> str:
    return urlsplit(page.url).query


def _until(page, check, timeout_ms: int = 10_000) -> None:
    """Poll `check` (the page's CSP forbids Playwright's string evaluation)."""
    for _ in range(timeout_ms // 100):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out on {page.url}")


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright():
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls here (and
    # the database flush after each test) are still synchronous. Only for this module: a leaked
    # variable fails `check --deploy`.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def chromium():
    # Our own Playwright, stopped with this module: pytest-playwright's session-wide one would
    # keep an event loop running in the main thread for every later test, and Django's ORM
    # refuses to run beside a running loop.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def manager_page(live_server, transactional_db, mallory, page):
    # The test database and server come up before Playwright's event loop starts.
    client = Client()
    client.force_login(mallory)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    return page


def test_filtering_pushes_the_url_and_back_restores_the_list(
    manager_page, live_server, tenant_a, alice
):
    page = manager_page
    for i in range(3):
        audit_attempt(tenant=tenant_a, actor=alice, status="failed", description=f"Failed {i}")
    audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="Mystery")
    audit_attempt(tenant=tenant_a, actor=alice, description="Fine")

    page.goto(f"{live_server.url}/audit/")
    rows = page.locator(".audit-table tbody tr")
    assert page.locator(".audit-table tbody tr").count() == 5
    assert (
        page.locator("svg.chart title").first.text_content() == "Trunk attempts per day by status"
    )
    assert page.locator("tr.row-unknown").count() == 1

    page.select_option("#id_status", "failed")
    _until(page, lambda: _search(page) == "status=failed&sort=newest")
    _until(page, lambda: rows.count() == 3)
    assert rows.count() == 3
    # The chart (its own fragment, loaded after the table) follows the filter too.
    chart = page.locator("#audit-chart")
    _until(page, lambda: "matching the filters: 3 attempts" in (chart.text_content() or ""))

    page.fill("#id_q", "Failed 1")
    _until(page, lambda: _search(page) == "status=failed&q=Failed%201&sort=newest")
    _until(page, lambda: rows.count() == 1)
    bookmark = page.url

    page.go_back()
    _until(page, lambda: _search(page) == "status=failed&sort=newest")
    _until(page, lambda: rows.count() == 3)
    page.go_back()
    _until(page, lambda: _search(page) == "")
    _until(page, lambda: rows.count() == 5)

    # A bookmarked URL opens the same filtered view, with the form filled in.
    page.goto(bookmark)
    assert page.locator(".audit-table tbody tr").count() == 1
    assert page.locator("#id_status").input_value() == "failed"
    assert page.locator("#id_q").input_value() == "Failed 1"
    page.screenshot(path="/tmp/audit-log.png", full_page=True)
    assert not [e for e in page.errors if "Content Security Policy" in e], page.errors
