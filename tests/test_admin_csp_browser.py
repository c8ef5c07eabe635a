"""Django admin and the portal's own pages under the portal's CSP, in real Chromium: no violation.

The HTML checks in test_browser_hardening.py prove what the server sends; this proves what the
browser does with it, JavaScript widgets included (admin's calendar, clock, permission chooser).
When the shared e2e harness (tests/e2e) is on main, this journey belongs there.
"""

import os
import shutil

import pytest

pytestmark = pytest.mark.e2e

# Runs in every page before its own scripts; Playwright's binding cannot be blocked by the CSP.
LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolation({
  directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber,
}));
"""

ADMIN_PAGES = [
    "/admin/",
    "/admin/auth/user/",
    "/admin/auth/user/add/",
    "/admin/auth/user/{root}/change/",
    "/admin/auth/user/{root}/password/",
    "/admin/auth/group/add/",
    "/admin/trunks/tenant/",
    "/admin/trunks/tenant/add/",
    "/admin/trunks/membership/add/",
    "/admin/axes/accessattempt/",
    "/admin/password_change/",
]
PORTAL_PAGES = ["/", "/accounts/confirm-password/?next=/"]


def _chromium_executable() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = _chromium_executable()
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    # Playwright's sync API keeps an asyncio loop in this thread; the ORM must still work here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    pw = sync_playwright().start()
    try:
        try:
            browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except PlaywrightError as error:
            pytest.skip(f"no Chromium to run the browser check: {error}")
        yield browser
        browser.close()
    finally:
        pw.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def watched_page(chromium):
    context = chromium.new_context()
    violations: list[dict] = []
    errors: list[str] = []
    context.expose_binding("__cspViolation", lambda _source, v: violations.append(v))
    context.add_init_script(LISTENER)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield page, violations, errors
    context.close()


def test_the_admin_runs_under_the_csp_without_a_violation(
    live_server, transactional_db, watched_page, settings
):
    from django.contrib.auth import get_user_model

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    root = get_user_model().objects.create_superuser(
        "rootcsp", "r@example.com", "violet-ferry-1987"
    )
    page, violations, errors = watched_page
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "rootcsp")
    page.fill("#id_password", "violet-ferry-1987")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    for template in ADMIN_PAGES + PORTAL_PAGES:
        url = template.format(root=root.pk)
        response = page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        assert response.status == 200, url
        if url.endswith("/change/"):
            # Exercise admin's JavaScript widgets: they must work without inline script or style.
            for opener in ("#calendarlink0", "#clocklink0", "a.selector-chooseall"):
                if page.locator(opener).count():
                    page.locator(opener).first.click()
                    page.keyboard.press("Escape")
            assert page.locator(".calendarbox, .clockbox").count() > 0, "admin widgets did not load"
        assert not violations, f"{url}: {violations}"
        assert not errors, f"{url}: {errors}"


def test_the_watch_does_catch_a_violation(live_server, db, watched_page):
    """The check above would be worthless if the listener never fired."""
    page, violations, _errors = watched_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.wait_for_timeout(200)
    assert any(v["directive"].startswith("style-src") for v in violations)
