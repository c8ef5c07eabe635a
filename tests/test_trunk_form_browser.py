"""The trunk form in real Chromium: the live checklist, Generate, show/hide, the htmx swap, CSP."""

import os
import re
import shutil

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from trunks.models import AuditRecord

from .trunk_fixtures import TRUNKS_URL, create_calls, created, sent_json

pytestmark = pytest.mark.e2e


def _chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser_page(live_server, settings, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain sync.
    # Only for this test: it must not leak into subprocesses such as `check --deploy`.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SESSION_COOKIE_SECURE = False
    executable = _chromium_path()
    with sync_playwright() as p:
        try:
            browser = (
                p.chromium.launch(executable_path=executable) if executable else p.chromium.launch()
            )
        except Exception as exc:  # no browser at all: fail loudly, never skip silently
            pytest.fail(f"No Chromium found ({exc}). Install Debian's `chromium` package.")
        context = browser.new_context()
        page = context.new_page()
        page.csp_violations = []
        page.on(
            "console",
            lambda m: (
                page.csp_violations.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )
        yield page, context
        browser.close()


def _login(context, live_server, user):
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    from django.conf import settings

    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "url": live_server.url,
            }
        ]
    )


@pytest.mark.django_db(transaction=True)
def test_staff_fill_the_form_with_a_generated_password_and_see_the_result(
    browser_page, live_server, alice, keyed_a, crazytel
):
    page, context = browser_page
    crazytel.add_passthru(live_server.url)
    crazytel.post(TRUNKS_URL, json=created("CT246810"))
    _login(context, live_server, alice)
    page.goto(f"{live_server.url}/trunks/new/")

    checklist = page.locator("#password-checklist")
    assert checklist.locator('[data-rule="upper"]').get_attribute("data-met") == "false"
    page.fill("#id_password", "abc")
    assert checklist.locator('[data-rule="lower"]').get_attribute("data-met") == "true"
    assert checklist.locator('[data-rule="upper"]').get_attribute("data-met") == "false"
    page.fill("#id_password", "Abcdefg1")
    for rule in ("length", "upper", "lower", "digit", "charset"):
        assert checklist.locator(f'[data-rule="{rule}"]').get_attribute("data-met") == "true"

    # Show/hide.
    toggle = page.locator("[data-password-toggle]")
    assert page.locator("#id_password").get_attribute("type") == "password"
    toggle.click()
    assert page.locator("#id_password").get_attribute("type") == "text"
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    assert page.locator("#id_password").get_attribute("type") == "password"

    # Generate: a strong password from the server, every rule ticked.
    page.click("[data-password-generate]")
    expect(page.locator("#id_password")).to_have_value(re.compile(r"^.{16,}$"))
    generated = page.input_value("#id_password")
    for rule in ("length", "upper", "lower", "digit", "charset"):
        assert checklist.locator(f'[data-rule="{rule}"]').get_attribute("data-met") == "true"

    page.select_option("#id_caller_id_number", "61298765432")
    page.select_option("#id_sms_sender", "61412345678")
    page.fill("#id_description", "Browser test")
    if os.environ.get("SHOTS"):
        page.screenshot(path="/tmp/issue5/form.png", full_page=True)
    page.click("#trunk-submit button[type=submit]")
    page.wait_for_selector("#trunk-result")
    if os.environ.get("SHOTS"):
        page.screenshot(path="/tmp/issue5/success.png", full_page=True)
    assert page.locator("#trunk-username").inner_text() == "CT246810"
    assert page.locator("#trunk-password").inner_text() == generated
    assert sent_json(create_calls(crazytel)[0])["password"] == generated
    assert AuditRecord.objects.get().trunk_username == "CT246810"

    # Reload: the password is gone (a fresh form; nothing was stored).
    page.reload()
    assert generated not in page.content()
    assert page.csp_violations == []


@pytest.mark.django_db(transaction=True)
def test_an_error_swaps_in_inline_beside_its_field(
    browser_page, live_server, alice, keyed_a, crazytel
):
    page, context = browser_page
    crazytel.add_passthru(live_server.url)
    crazytel.post(
        TRUNKS_URL,
        status=400,
        json={"detail": "SMS sender is not verified"},
    )
    _login(context, live_server, alice)
    page.goto(f"{live_server.url}/trunks/new/")
    page.select_option("#id_caller_id_number", "61298765432")
    page.select_option("#id_sms_sender", "61412345678")
    page.fill("#id_password", "Abcdefg1234")
    page.click("#trunk-submit button[type=submit]")
    page.wait_for_selector("#id_sms_sender_error")
    if os.environ.get("SHOTS"):
        page.screenshot(path="/tmp/issue5/error.png", full_page=True)
    assert page.locator("#id_sms_sender").get_attribute("aria-invalid") == "true"
    assert "id_sms_sender_error" in page.locator("#id_sms_sender").get_attribute("aria-describedby")
    assert page.url.endswith("/trunks/new/")
    assert page.input_value("#id_password") == ""
    assert page.csp_violations == []
