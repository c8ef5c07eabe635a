"""The real test OpenID Connect provider (tests/oidc/provider), and the portal pointed at it."""

import re
from urllib.parse import urljoin

import pytest
import requests

from tests.oidc.provider import OidcTestProvider, TestUser

PORTAL = "http://testserver"
PROVIDER_PASSWORD = "provider-password-1"

USERS = [
    TestUser(
        sub="u-alice", username="alice.sso", email="alice.sso@example.com", groups=["voice-alpha"]
    ),
    TestUser(
        sub="u-adam", username="adam.sso", email="adam@example.com", groups=["voice-alpha-admins"]
    ),
    TestUser(sub="u-newbie", username="newbie", email="newbie@example.com"),
    # Claims charlie's address without the provider having verified it.
    TestUser(sub="u-eve", username="eve", email="charlie@example.com", email_verified=False),
    TestUser(sub="u-gina", username="gina", email="gina@example.com", groups=["voice-alpha"]),
    TestUser(sub="u-dora", username="dora", email="dora@example.com"),
]

GROUP_ROLES = {
    "voice-alpha": [("alpha", "staff")],
    "voice-alpha-admins": [("alpha", "admin")],
    "voice-bravo": [("bravo", "staff")],
}


@pytest.fixture(scope="session")
def oidc_provider():
    with OidcTestProvider(
        redirect_uris=[f"{PORTAL}/accounts/oidc/callback/"],
        post_logout_redirect_uris=[f"{PORTAL}/accounts/login/"],
        users=USERS,
    ) as provider:
        yield provider


@pytest.fixture
def oidc(settings, oidc_provider, db):
    """The portal configured for the test provider, as the environment would configure it."""
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = oidc_provider.issuer
    settings.OIDC_CLIENT_ID = oidc_provider.client_id
    settings.OIDC_CLIENT_SECRET = oidc_provider.client_secret
    settings.OIDC_SCOPES = "openid email profile groups"
    settings.OIDC_BUTTON_LABEL = "Example SSO"
    settings.OIDC_GROUP_ROLES = GROUP_ROLES
    oidc_provider.inject_fault(None)
    return oidc_provider


def provider_leg(browser: requests.Session, url: str, login: str, password: str) -> str:
    """Follow the provider's pages as a person would: its login form, then back to the portal.
    Returns the portal callback URL the provider redirects to."""
    for _ in range(15):
        response = browser.get(url, allow_redirects=False, timeout=10)
        while True:
            if response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                if url.startswith(PORTAL):
                    return url
                break
            form = re.search(r'<form method="post" action="([^"]+)"', response.text)
            if response.status_code == 200 and form and 'name="login"' in response.text:
                if 'role="alert"' in response.text:
                    raise ProviderRefused(response.text)
                response = browser.post(
                    urljoin(url, form.group(1)),
                    data={"login": login, "password": password},
                    allow_redirects=False,
                    timeout=10,
                )
                continue
            if response.status_code == 200 and form and 'type="hidden"' in response.text:
                # A page that submits itself with script (the provider ending the old session
                # when another person signs in): submit it as the browser would.
                fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', response.text))
                response = browser.post(
                    urljoin(url, form.group(1)), data=fields, allow_redirects=False, timeout=10
                )
                continue
            raise ProviderRefused(response.text)
    raise AssertionError("too many redirects at the provider")


class ProviderRefused(Exception):
    """The provider showed a page instead of sending the person back (its text is the message)."""


@pytest.fixture
def sign_in(client):
    """Sign in through the real provider; returns the portal's answer to the callback."""

    def run(login, password=PROVIDER_PASSWORD, *, browser=None, start="/accounts/oidc/login/"):
        start_response = client.get(start)
        assert start_response.status_code == 302, start_response
        browser = browser or requests.Session()
        callback = provider_leg(browser, start_response["Location"], login, password)
        response = client.get(callback)
        response.callback_url = callback
        response.browser = browser
        return response

    return run
