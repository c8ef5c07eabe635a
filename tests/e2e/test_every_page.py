"""Every page of every role, on a phone (390 px) and a desk (1280 px), in the light and the dark
theme: no page is wider than the screen, axe finds nothing serious, the CSP watcher stays quiet,
and a screenshot of each is kept (artifacts/screenshots/<role>-<page>-<width>-<theme>.png)."""

import pytest
from playwright.sync_api import expect

from tests.factories import MembershipFactory, UserFactory, audit_attempt
from trunks.lifecycle.services import trunk_change
from trunks.models import Role, Trunk
from trunks.provisioning.services import trunk_create

from .browser import THEME_RULES, page_settled, screenshot
from .conftest import Portal
from .test_staff_journey import fill_valid_form, submit

WIDTHS = (390, 1280)
THEMES = ("light", "dark")
# axe-core scans each page in both themes at one width (its contrast and name rules do not change
# with the width; a scan costs about a second): the phone width gets the overflow check and its
# screenshots. Every rule in the first theme seen at that width; in the second, the rules the theme
# can change (browser.THEME_RULES: contrast, and the toggle's aria-pressed), as the rest would
# repeat the first.
AXE_WIDTH = 1280


def check_everywhere(portal: Portal, name: str) -> None:
    """The page as it is now, at each width in each theme (the system's preference, emulated).

    The four views are walked from the one the page is in, changing one thing at a time (each
    change costs Chromium a new style and layout): this theme, the other, the other width in it,
    then the first theme there. axe runs every rule at AXE_WIDTH in the theme seen there first and
    THEME_RULES in the other, as for every page; which theme comes first does not matter."""
    page = portal.page
    width = page.viewport_size["width"]
    if width not in WIDTHS:
        width = WIDTHS[0]
        page.set_viewport_size({"width": width, "height": 900})
    dark = page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches")
    current = THEMES[1] if dark else THEMES[0]
    other_width = next(w for w in WIDTHS if w != width)
    other_theme = next(t for t in THEMES if t != current)
    views = [
        (width, current),
        (width, other_theme),
        (other_width, other_theme),
        (other_width, current),
    ]
    scanned = False
    for view_width, view_theme in views:
        if view_width != page.viewport_size["width"]:
            page.set_viewport_size({"width": view_width, "height": 900})
        if view_theme != current:
            page.emulate_media(color_scheme=view_theme)
            current = view_theme
        page_settled(page)
        overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert overflow[0] <= overflow[1], (
            f"{name} at {view_width} px ({view_theme}) is {overflow[0]} px wide: it scrolls sideways"
        )
        if view_width == AXE_WIDTH:
            rules = THEME_RULES if scanned else None
            portal.check(f"{name}-{view_width}-{view_theme}", rules=rules)  # axe, CSP, screenshot
            scanned = True
        else:
            portal.assert_clean()
            screenshot(page, f"{name}-{view_width}-{view_theme}")


def visit_all(portal: Portal, role: str, paths: dict[str, str]) -> None:
    for name, path in paths.items():
        portal.goto(path)
        check_everywhere(portal, f"{role}-{name}")


@pytest.fixture
def people(alpha, alice, mallory, adam, bob):
    """alice staff, mallory manager, adam admin in A (on the sandbox); bob in B; records to read."""
    lost = audit_attempt(tenant=alpha, actor=alice, status="unknown", description="Lost desk")
    done = audit_attempt(
        tenant=alpha, actor=alice, description="A rather long description of the boardroom phone"
    )
    audit_attempt(
        tenant=alpha,
        actor=alice,
        status="failed",
        upstream_status=422,
        error_category="validation",
        error_message="caller_id_number: The number is not verified on this account.",
    )
    return {"lost": lost, "done": done}


@pytest.fixture
def changed_trunk(alpha, alice) -> Trunk:
    """A trunk alice made on the sandbox, then changed: its page lists the change, whose audit
    record reads as before → after (long values included)."""
    made = trunk_create(
        actor=alice,
        tenant=alpha,
        data={
            "caller_id_number": "61298765432",
            "password": "Canary9PasswordXyz",
            "description": "Reception",
            "enabled": True,
        },
        request=None,
        submission_token="tok-every-page-create",
    )
    assert made.succeeded, made
    trunk = Trunk.objects.get(username=made.record.trunk_username)
    changed = trunk_change(
        actor=alice,
        trunk=trunk,
        wanted={
            "description": "The boardroom phone on level 3, beside the projector-and-whiteboard"
            "-cupboard-that-nobody-ever-opens-because-the-key-went-missing-in-2019",
            "caller_id_number": "61412345678",
        },
        version=trunk.version,
        submission_token="tok-every-page-change",
    )
    assert changed.succeeded, changed
    trunk.refresh_from_db()
    trunk.change = changed.record
    return trunk


def test_staff_pages_fit_every_screen_in_both_themes(portal, people, changed_trunk, alice):
    portal.login_as(alice)
    lost = people["lost"]
    visit_all(
        portal,
        "staff",
        {
            "home": "/",
            "new-trunk": "/trunks/new/",
            "trunks": "/trunks/",
            "trunk": f"/trunks/{changed_trunk.username}/",
            "bulk": "/trunks/bulk/",
            "password": "/accounts/password_change/",
            "attempt": f"/trunks/attempts/{lost.uuid}/",
            "forbidden": "/audit/",
            "not-found": "/no/such/page/",
        },
    )
    # The success page, with the username and the password shown once (it cannot be reloaded).
    portal.goto("/trunks/new/")
    fill_valid_form(portal.page)
    submit(portal.page)
    expect(portal.page.locator("#trunk-create .result")).to_be_visible()
    check_everywhere(portal, "staff-created")


def test_manager_pages_fit_every_screen_in_both_themes(portal, people, changed_trunk, mallory):
    portal.login_as(mallory)
    record = people["lost"].pk
    visit_all(
        portal,
        "manager",
        {
            "home": "/",
            "audit": "/audit/",
            "audit-filtered": "/audit/?status=failed",
            "audit-record": f"/audit/{record}/",
            "audit-record-succeeded": f"/audit/{people['done'].pk}/",
            "audit-record-change": f"/audit/{changed_trunk.change.pk}/",
            "audit-chart": "/audit/chart/",
        },
    )


def test_the_audit_filters_fold_behind_one_button_on_a_phone(portal, people, mallory):
    portal.login_as(mallory)
    page = portal.page
    page.set_viewport_size({"width": 390, "height": 900})
    portal.goto("/audit/")
    status = page.get_by_label("Status", exact=True)
    expect(status).to_be_hidden()
    page.locator("summary", has_text="Filters").click()
    expect(status).to_be_visible()

    page.set_viewport_size({"width": 1280, "height": 900})
    portal.goto("/audit/")
    expect(page.locator("summary", has_text="Filters")).to_be_hidden()
    expect(status).to_be_visible()


def test_admin_pages_fit_every_screen_in_both_themes(portal, people, adam, alice):
    portal.login_as(adam)
    membership = alice.memberships.get()
    visit_all(
        portal,
        "admin",
        {
            "home": "/",
            "tenants": "/tenants/",
            "tenant": "/tenants/alpha/",
            "tenant-edit": "/tenants/alpha/edit/",
            "member-remove": f"/tenants/alpha/members/{membership.pk}/remove/",
            "member-password": f"/tenants/alpha/members/{membership.pk}/password/",
            "deactivate": "/tenants/alpha/deactivate/",
            "confirm-password": "/accounts/confirm-password/",
        },
    )


def test_superuser_pages_fit_every_screen_in_both_themes(portal, people, tenant_b):
    root = UserFactory(username="root-with-a-rather-long-name", superuser=True)
    MembershipFactory(user=UserFactory(username="bravo-admin"), tenant=tenant_b, role=Role.ADMIN)
    portal.login_as(root)
    visit_all(
        portal,
        "superuser",
        {"home": "/", "tenants": "/tenants/", "tenant-new": "/tenants/new/"},
    )


def test_the_login_page_fits_every_screen_in_both_themes(portal, db):
    visit_all(portal, "anonymous", {"login": "/accounts/login/"})


def test_the_theme_toggle_is_remembered_and_drawn_from_the_first_paint(portal, alice):
    portal.login_as(alice)
    page = portal.page
    page.emulate_media(color_scheme="light")
    portal.goto("/")
    toggle = page.get_by_role("button", name="Dark theme", exact=True)
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")

    # The next page arrives already dark: the server wrote the choice into its HTML.
    response = portal.goto("/trunks/new/")
    assert '<html lang="en-AU" data-theme="dark">' in response.text()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
    portal.check("theme-toggled-dark")

    page.get_by_role("button", name="Dark theme", exact=True).click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    portal.goto("/")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != background


def test_a_tenants_members_are_stacked_rows_on_a_phone(portal, people, adam):
    """Every member's buttons are on the screen at 390 px, not hidden in a box that scrolls
    sideways; the table is still a table with column headers for a screen reader."""
    portal.login_as(adam)
    page = portal.page
    page.set_viewport_size({"width": 390, "height": 900})
    portal.goto("/tenants/alpha/")
    members = page.locator("#members")
    for username in ("adam", "mallory", "alice"):
        row = members.get_by_role("row", name=username)
        for control in (
            row.get_by_role("button", name="Change role"),
            row.get_by_role("link", name=f"Reset password of {username}"),
            row.get_by_role("link", name=f"Remove {username}"),
        ):
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (
                f"{username}'s control is off the screen: {box}"
            )
    expect(members.get_by_role("columnheader", name="Last log-in")).to_be_attached()
