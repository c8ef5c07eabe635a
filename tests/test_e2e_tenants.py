"""In a real browser: an admin sets up a tenant from the portal alone, with htmx and CSP on."""

import os
import re
import secrets

import pytest
import responses
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from playwright.sync_api import sync_playwright

from trunks.models import AuditKind, AuditRecord, Membership, Role, Tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# New each run (the rate limiter keeps per-key budgets in the shared cache); ends in 5678.
KEY = f"browser-key-{secrets.token_hex(6)}-5678"


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A Chromium page with its own Playwright, stopped when the test ends.

    Not pytest-playwright's session-wide `page`: its event loop would stay in this thread for the
    rest of the session and make every later database test fail as "async context". Depends on
    live_server so the page closes before the live server's database flush.
    """
    # While the loop runs, the ORM calls in the test are still plain sync calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path if os.path.exists(path) else None)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


@pytest.fixture
def crazytel():
    # The live server runs in this process: patch its outgoing calls at the HTTP edge, but let the
    # browser's own requests to the live server through.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(r"http://(localhost|127\.0\.0\.1)"))
        mock.get(
            f"{settings.CRAZYTEL_API_BASE_URL}/balance/",
            json={"account_code": "0004242", "balance": 99.5},
        )
        yield mock


def _login(page, live_server, username, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()


def test_an_admin_sets_up_a_tenant_in_the_browser(
    browser_page, live_server, root, password, crazytel
):
    page = browser_page
    console_errors = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            # The browser's own favicon probe is not the page's business.
            and not m.location.get("url", "").endswith("/favicon.ico")
            and console_errors.append(f"{m.text} {m.location.get('url', '')}")
        ),
    )
    _login(page, live_server, "root", password)

    page.goto(f"{live_server.url}/tenants/")
    page.get_by_role("link", name="New tenant").click()
    page.get_by_label("Name", exact=True).fill("Echo Voice")
    page.get_by_label("Short name").fill("echo")
    page.get_by_role("button", name="Create tenant").click()
    page.wait_for_url(re.compile(r"/tenants/echo/$"))
    assert page.get_by_text("Tenant Echo Voice created.").is_visible()

    # Setting a key needs the password again; then back to the tenant's page.
    page.get_by_role("link", name="Confirm your password").click()
    page.get_by_label("Your password").fill(password)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/tenants/echo/$"))

    # Key: write-only; htmx swaps the key section and the state card.
    page.get_by_label("Crazytel API key").fill(KEY)
    page.get_by_role("button", name="Save key").click()
    page.get_by_text("API key set: ••••5678").wait_for()
    assert page.get_by_label("Crazytel API key").input_value() == ""
    assert KEY not in page.content()

    # Test connection: the result appears inline.
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text("Connection works.").wait_for()
    assert page.locator("#connection-result").get_by_text("0004242").is_visible()

    # A staff member, created with a password shown once.
    page.get_by_label("Username").fill("eddie")
    page.get_by_label("Create this user if they do not exist yet").check()
    page.get_by_role("button", name="Add member").click()
    page.locator("#new-password").wait_for()
    new_password = page.locator("#new-password").inner_text().strip()
    assert len(new_password) >= 16

    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], results.generate_report()
    assert console_errors == []  # no CSP violation, no script error

    tenant = Tenant.objects.get(slug="echo")
    assert tenant.connection_ok is True
    assert Membership.objects.get(tenant=tenant, user__username="eddie").role == Role.STAFF
    kinds = set(AuditRecord.objects.filter(tenant=tenant).values_list("kind", flat=True))
    assert kinds == {
        AuditKind.TENANT_CREATED,
        AuditKind.KEY_SET,
        AuditKind.CONNECTION_TESTED,
        AuditKind.MEMBER_ADDED,
    }

    # The new staff member can sign in with it.
    page.get_by_role("button", name="Log out").click()
    _login(page, live_server, "eddie", new_password)
    assert "/accounts/login/" not in page.url
