"""Signing in through the company's identity provider in real Chromium, against the real test
provider (tests/oidc/provider): the provider's page, the tenants the groups give, signing out at
the provider too, and a group removed at the provider taking the tenant away at the next sign-in."""

import pytest
from playwright.sync_api import expect

from portal.oidc_settings import csp_form_action
from tests.oidc.provider import OidcTestProvider, TestUser
from trunks.models import Membership, Role

PASSWORD = "provider-password-1"


@pytest.fixture(scope="module")
def journey_provider(live_server):
    with OidcTestProvider(
        redirect_uris=[f"{live_server.url}/accounts/oidc/callback/"],
        post_logout_redirect_uris=[f"{live_server.url}/accounts/login/"],
        users=[
            TestUser(
                sub="u-olive",
                username="olive",
                email="olive@example.com",
                groups=["voice-alpha-managers", "voice-bravo"],
            )
        ],
    ) as provider:
        yield provider


@pytest.fixture
def sso(settings, journey_provider, tenant_a, tenant_b):
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = journey_provider.issuer
    settings.OIDC_CLIENT_ID = journey_provider.client_id
    settings.OIDC_CLIENT_SECRET = journey_provider.client_secret
    settings.OIDC_SCOPES = "openid email profile groups"
    settings.OIDC_BUTTON_LABEL = "Example SSO"
    settings.OIDC_GROUP_ROLES = {
        "voice-alpha-managers": [("alpha", "manager")],
        "voice-bravo": [("bravo", "staff")],
    }
    settings.SECURE_CSP = {
        **settings.SECURE_CSP,
        "form-action": csp_form_action(journey_provider.issuer),
    }
    return journey_provider


def sign_in_at_provider(portal):
    page = portal.page
    portal.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Example SSO").click()
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    page.get_by_label("Username or e-mail").fill("olive")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_person_signs_in_at_the_provider_gets_their_groups_tenants_and_signs_out_there(
    portal, sso, tenant_a, tenant_b
):
    page = portal.page
    portal.goto("/accounts/login/")
    portal.check("login-with-sso")
    sign_in_at_provider(portal)
    # Manager in alpha (the audit log), staff in bravo (new trunks).
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Audit log")).to_be_visible()
    expect(nav.get_by_role("link", name="New trunk")).to_be_visible()
    expect(nav.get_by_role("link", name="Tenants")).to_have_count(0)
    portal.check("signed-in-through-sso")
    olive = Membership.objects.get(tenant=tenant_a).user
    assert olive.username == "olive"
    assert Membership.objects.get(user=olive, tenant=tenant_a).role == Role.MANAGER
    assert Membership.objects.get(user=olive, tenant=tenant_b).role == Role.STAFF

    # Signing out here signs out at the provider too (it asks first).
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert page.url.startswith(portal.url("/accounts/login/"))

    # Removed from the bravo group at the provider: the next sign-in loses bravo. The provider
    # asks for the password again: its session ended with the portal's.
    sso.set_user("u-olive", groups=["voice-alpha-managers"])
    sign_in_at_provider(portal)
    assert not Membership.objects.filter(user=olive, tenant=tenant_b).exists()
    assert Membership.objects.get(user=olive, tenant=tenant_a).role == Role.MANAGER
    portal.check("signed-in-again-without-bravo")
