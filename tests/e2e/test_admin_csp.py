"""Django admin and the portal's own pages under the portal's CSP, in real Chromium: no violation.

The HTML checks in test_browser_hardening.py prove what the server sends; this proves what the
browser does with it, JavaScript widgets included (admin's calendar, clock, permission chooser).
The shared harness's watcher (tests/e2e/browser.py) reports every CSP violation, script error and
missing asset; `Portal.assert_clean()` fails on any of them.
"""

from playwright.sync_api import expect

from .browser import screenshot, until

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


def test_the_admin_runs_under_the_csp_without_a_violation(portal, root, password):
    """One admin session visits every model's change list and add form (as the index links them),
    the pages with JavaScript widgets, and the portal's own pages: no violation anywhere.
    (Was two tests, here and in test_login.py, that each logged in and walked most of the same
    pages; this one covers the union.)"""
    page = portal.page
    portal.goto("/admin/")
    page.get_by_label("Username").fill(root.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page).to_have_url(portal.url("/admin/"))
    portal.assert_clean()
    hrefs = page.locator("#content-main a[href^='/admin/'][href$='/']").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    # Each model's change list (/admin/<app>/<model>/) and its add form (.../add/).
    listed = [h for h in dict.fromkeys(hrefs) if h.count("/") in (4, 5)]
    assert listed, "Django admin lists no model"

    fixed = [template.format(root=root.pk) for template in ADMIN_PAGES]
    for url in dict.fromkeys(fixed + listed + PORTAL_PAGES):
        response = portal.goto(url)
        assert response.status == 200, f"{url}: {response.status}"
        if url.endswith("/change/"):
            # Exercise admin's JavaScript widgets: they must work without inline script or style.
            for opener in ("#calendarlink0", "#clocklink0", "a.selector-chooseall"):
                if page.locator(opener).count():
                    page.locator(opener).first.click()
                    page.keyboard.press("Escape")
            assert page.locator(".calendarbox, .clockbox").count() > 0, "admin widgets did not load"
            portal.assert_clean()
            screenshot(page, "admin-user-change-widgets")
        elif url in PORTAL_PAGES:
            portal.check()  # our own pages: axe-scanned too
        else:
            portal.assert_clean()  # Django admin's own markup is not ours to axe-scan


def test_the_watch_does_catch_a_violation(portal, db):
    """The check above would be worthless if the watcher never fired."""
    page = portal.page
    portal.goto("/accounts/login/")
    expect(page.get_by_label("Username")).to_be_visible()
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    until(page, lambda: portal.watch.csp_violations, "the CSP violation to be reported")
    assert any(v["directive"].startswith("style-src") for v in portal.watch.csp_violations)
    assert any(p.startswith("CSP violation") for p in portal.watch.problems())
    portal.watch.clear()  # provoked on purpose: not a failure of this test's teardown
