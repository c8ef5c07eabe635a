"""A tenant admin with a portal password sets up an authenticator app in real Chromium before the
tenant pages open, and replacing an API key asks for a current code."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.accounts.totp import code_from, steps_to_an_unused_code

pytestmark = pytest.mark.second_factor


def test_a_tenant_admin_sets_up_totp_first_and_confirms_a_key_change_with_a_code(
    portal, adam, password, tenant_a
):
    page = portal.page
    portal.goto("/tenants/")
    page.get_by_label("Username").fill("adam")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    # The picture itself decodes (an SVG data: URI without its namespace shows only the alt text).
    assert page.locator("#totp-qr").evaluate("img => img.complete && img.naturalWidth > 0")
    portal.check("two-factor-setup")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from your authenticator app").fill(code_from(secret))
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    portal.check("two-factor-recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page).to_have_url(portal.url("/tenants/"))

    # Setting the key: the password and a current code.
    portal.goto(f"/tenants/{tenant_a.slug}/")
    page.locator("#key").get_by_role("link", name="Confirm your password").click()
    expect(page.get_by_role("heading", name="Confirm your password and code")).to_be_visible()
    portal.check("reauth-with-code")
    page.get_by_label("Your password").fill(password)
    # The next code the app shows that was not used yet (the one just typed is refused again).
    drift = steps_to_an_unused_code(TOTPDevice.objects.get(user=adam))
    page.get_by_label("Code from your authenticator app").fill(code_from(secret, drift=drift))
    page.get_by_role("button", name="Confirm").click()
    key_input = page.get_by_label("Crazytel API key")
    key_input.fill("ct_live_second_factor_journey_key_1234")
    page.get_by_role("button", name="Save key").click()
    expect(page.locator("#key").get_by_role("status")).to_contain_text("API key set: ••••1234")
