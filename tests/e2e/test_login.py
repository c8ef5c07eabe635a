"""Logging in and out in a real browser; and the journeys' own watchers, proven to catch problems."""

import pytest
from playwright.sync_api import expect

from .browser import THEME_RULES, axe_violations, until


def test_a_person_logs_in_after_a_wrong_password_and_logs_out(portal, charlie, password):
    page = portal.page
    portal.goto("/")
    # Every page requires login: the portal sends the person to the login page.
    expect(page).to_have_url(portal.url("/accounts/login/?next=/"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    portal.check("login")

    page.get_by_label("Username").fill("charlie")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Please enter a correct username and password")
    # The error is tied to the fields, and what was typed (but the password) is kept.
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Username")).to_have_value("charlie")
    expect(page.get_by_label("Password")).to_have_value("")
    portal.check("login-error")

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome, charlie")).to_be_visible()
    expect(page.get_by_text("You do not belong to any tenant yet")).to_be_visible()
    portal.check("home-no-tenant")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    portal.goto("/")
    expect(page).to_have_url(portal.url("/accounts/login/?next=/"))


def test_the_login_page_works_without_javascript(open_portal, charlie, password):
    portal = open_portal(js=False)
    portal.login("charlie", password)
    expect(portal.page.get_by_role("heading", name="Welcome, charlie")).to_be_visible()
    portal.check()


# --- The watchers themselves: a journey that passes must mean something -----------------------------


def test_the_csp_watcher_catches_an_inline_script(portal, charlie):
    """If the portal ever needed `unsafe-inline`, the journeys would say so."""
    portal.login_as(charlie)
    portal.goto("/")
    portal.assert_clean()
    portal.page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__ran = true"; document.body.append(s); }"""
    )
    until(
        portal.page,
        lambda: any(v["directive"].startswith("script-src") for v in portal.watch.csp_violations),
        "the browser to report the blocked inline script",
    )
    assert portal.page.evaluate("() => window.__ran === undefined"), "CSP let an inline script run"
    assert any(v["directive"].startswith("script-src") for v in portal.watch.csp_violations)
    with pytest.raises(AssertionError, match="CSP violation"):
        portal.assert_clean()
    portal.watch.clear()


def test_the_axe_scan_finds_a_serious_violation(portal, charlie):
    """axe-core really loads and runs under the portal's CSP (a scan that sees nothing proves
    nothing)."""
    portal.login_as(charlie)
    portal.goto("/")
    portal.page.evaluate(
        """() => { const i = document.createElement("input"); i.type = "text";
                   document.querySelector("main").append(i); }"""
    )
    ids = {
        v["id"]
        for v in axe_violations(portal.page, portal.axe_url)
        if v["impact"] in {"serious", "critical"}
    }
    assert "label" in ids
    # The second theme's scan (only the rules a theme can change) still sees a contrast failure
    # there, and runs nothing else (the unlabelled field is not reported again).
    portal.page.emulate_media(color_scheme="dark")
    portal.page.evaluate(
        """() => { const p = document.createElement("p"); p.textContent = "Hard to read";
                   p.style.color = "#18202a"; document.querySelector("main").append(p); }"""
    )
    ids = {v["id"] for v in axe_violations(portal.page, portal.axe_url, THEME_RULES)}
    assert ids == {"color-contrast"}
    portal.assert_clean()


def test_the_login_works_from_the_keyboard_alone(portal, charlie, password):
    page = portal.page
    portal.goto("/accounts/login/")
    # The username field has focus on arrival; on the next page the first Tab reaches the skip link.
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("charlie")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Welcome, charlie")).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
