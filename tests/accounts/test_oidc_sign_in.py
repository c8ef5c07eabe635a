"""Sign-in through the company's identity provider, against a real OpenID Connect provider."""

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from trunks.accounts.models import GroupMembership, OidcIdentity, SignInEvent
from trunks.models import AuditKind, AuditRecord, Membership, Role

from .conftest import ProviderRefused, provider_leg


def signed_in_as(client):
    return client.session.get("_auth_user_id")


def last_event():
    return SignInEvent.objects.order_by("-id").first()


# --- The log-in page --------------------------------------------------------------------------


def test_without_a_provider_the_login_page_has_only_the_password_form(client, db):
    html = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in html
    assert 'name="password"' in html
    assert client.get("/accounts/oidc/login/").status_code == 404


def test_with_a_provider_the_login_page_offers_its_button(client, oidc):
    html = client.get("/accounts/login/").content.decode()
    assert "Sign in with Example SSO" in html
    assert 'name="password"' in html


def test_the_sign_in_starts_with_pkce_state_and_nonce(client, oidc):
    location = client.get("/accounts/oidc/login/")["Location"]
    params = parse_qs(urlparse(location).query)
    assert location.startswith(f"{oidc.issuer}/auth")
    assert params["code_challenge_method"] == ["S256"]
    assert len(params["code_challenge"][0]) >= 43
    assert params["state"][0] and params["nonce"][0]
    assert params["redirect_uri"] == ["http://testserver/accounts/oidc/callback/"]


# --- Linking ----------------------------------------------------------------------------------


def test_a_new_person_gets_a_new_user_with_no_tenant(client, oidc, sign_in):
    response = sign_in("newbie")
    assert response.status_code == 302
    identity = OidcIdentity.objects.get(subject="u-newbie", issuer=oidc.issuer)
    assert signed_in_as(client) == str(identity.user.pk)
    assert identity.user.username == "newbie"
    assert identity.user.email == "newbie@example.com"
    assert not identity.user.has_usable_password()
    assert not Membership.objects.filter(user=identity.user).exists()
    assert last_event().outcome == "succeeded"


def test_a_verified_email_links_the_existing_user_once_then_sub_matches(
    client, oidc, sign_in, adam
):
    adam.email = "adam@example.com"
    adam.save()
    assert sign_in("adam.sso").status_code == 302
    assert signed_in_as(client) == str(adam.pk)
    assert OidcIdentity.objects.get(user=adam).subject == "u-adam"
    client.logout()
    # The provider changes the address: the link by sub still finds adam.
    oidc.set_user("u-adam", email="adam.renamed@example.com")
    try:
        assert sign_in("adam.renamed@example.com").status_code == 302
        assert signed_in_as(client) == str(adam.pk)
    finally:
        oidc.set_user("u-adam", email="adam@example.com")


def test_an_unverified_email_cannot_take_over_an_existing_user(client, oidc, sign_in, charlie):
    assert charlie.email == "charlie@example.com"
    response = sign_in("eve")
    assert response.status_code == 403
    assert "has not verified your e-mail address" in response.content.decode()
    assert signed_in_as(client) is None
    assert not OidcIdentity.objects.exists()
    event = last_event()
    assert (event.outcome, event.reason, event.subject) == ("failed", "email_unverified", "u-eve")


def test_a_user_disabled_in_the_portal_is_refused(client, oidc, sign_in, charlie):
    sign_in("dora")
    user = OidcIdentity.objects.get(subject="u-dora").user
    client.logout()
    user.is_active = False
    user.save()
    response = sign_in("dora")
    assert response.status_code == 403
    assert "disabled" in response.content.decode()
    assert signed_in_as(client) is None
    assert last_event().reason == "inactive"


def test_a_person_disabled_at_the_provider_cannot_sign_in_again(client, oidc, sign_in):
    browser = requests.Session()
    assert sign_in("dora", browser=browser).status_code == 302
    client.post("/accounts/logout/")
    oidc.set_user("u-dora", disabled=True)
    try:
        # Even with the provider's session cookie still in the browser.
        start = client.get("/accounts/oidc/login/")["Location"]
        with pytest.raises(ProviderRefused, match="This account is disabled"):
            provider_leg(browser, start, "dora", "provider-password-1")
    finally:
        oidc.set_user("u-dora", disabled=False)
    assert signed_in_as(client) is None


# --- What the portal refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason", "message"),
    [
        ("tamper", "signature", "failed its signature check"),
        ("audience", "audience", "meant for another application"),
        ("expired", "expired", "had expired"),
        ("issuer", "issuer", "unexpected issuer"),
    ],
)
def test_a_bad_id_token_is_refused_and_recorded(client, oidc, sign_in, fault, reason, message):
    oidc.inject_fault(fault)
    response = sign_in("newbie")
    assert response.status_code == 403
    assert message in response.content.decode()
    assert signed_in_as(client) is None
    assert not OidcIdentity.objects.exists()
    event = last_event()
    assert (event.method, event.outcome, event.reason) == ("oidc", "failed", reason)


def test_a_replayed_callback_is_refused_and_recorded(client, oidc, sign_in):
    first = sign_in("newbie")
    assert first.status_code == 302
    client.post("/accounts/logout/")
    replay = client.get(first.callback_url)
    assert replay.status_code == 403
    assert "already used or has expired" in replay.content.decode()
    assert signed_in_as(client) is None
    assert last_event().reason == "state"


def test_a_callback_from_another_browser_is_refused(client, oidc, sign_in, django_user_model):
    """Login CSRF: a code and state started in someone else's session do not sign this one in."""
    from django.test import Client

    victim = Client()
    start = client.get("/accounts/oidc/login/")["Location"]
    callback = provider_leg(requests.Session(), start, "newbie", "provider-password-1")
    assert victim.get(callback).status_code == 403
    assert victim.session.get("_auth_user_id") is None


def test_an_error_from_the_provider_is_shown_and_recorded(client, oidc):
    client.get("/accounts/oidc/login/")
    response = client.get(
        "/accounts/oidc/callback/?error=access_denied&error_description=User+cancelled"
    )
    assert response.status_code == 403
    assert "User cancelled" in response.content.decode()
    assert last_event().reason == "provider_error"


# --- Roles from groups --------------------------------------------------------------------------


def test_groups_give_tenants_and_leaving_a_group_removes_only_that(
    client, oidc, sign_in, tenant_a, tenant_b
):
    assert sign_in("gina").status_code == 302
    gina = OidcIdentity.objects.get(subject="u-gina").user
    membership = Membership.objects.get(user=gina, tenant=tenant_a)
    assert membership.role == Role.STAFF
    assert GroupMembership.objects.filter(membership=membership).exists()
    added = AuditRecord.objects.get(tenant=tenant_a, kind=AuditKind.MEMBER_ADDED)
    assert added.data["via"] == "identity provider groups"
    assert added.data["username"] == gina.username
    # An admin adds gina to bravo by hand: the groups never touch that.
    Membership.objects.create(user=gina, tenant=tenant_b, role=Role.MANAGER)
    client.post("/accounts/logout/")

    oidc.set_user("u-gina", groups=["voice-alpha-admins"])
    try:
        sign_in("gina")
        assert Membership.objects.get(user=gina, tenant=tenant_a).role == Role.ADMIN
        changed = AuditRecord.objects.get(tenant=tenant_a, kind=AuditKind.MEMBER_ROLE_CHANGED)
        assert changed.data["role"] == ["staff", "admin"]
        client.post("/accounts/logout/")

        oidc.set_user("u-gina", groups=[])
        sign_in("gina")
        assert not Membership.objects.filter(user=gina, tenant=tenant_a).exists()
        assert AuditRecord.objects.filter(tenant=tenant_a, kind=AuditKind.MEMBER_REMOVED).exists()
        assert Membership.objects.get(user=gina, tenant=tenant_b).role == Role.MANAGER
    finally:
        oidc.set_user("u-gina", groups=["voice-alpha"])


def test_a_hand_granted_membership_is_left_alone_by_groups(client, oidc, sign_in, adam, tenant_a):
    adam.email = "adam@example.com"
    adam.save()
    oidc.set_user("u-adam", groups=[])
    try:
        sign_in("adam.sso")
    finally:
        oidc.set_user("u-adam", groups=["voice-alpha-admins"])
    assert Membership.objects.get(user=adam, tenant=tenant_a).role == Role.ADMIN


# --- Signing out --------------------------------------------------------------------------------


def test_logging_out_also_ends_the_session_at_the_provider(client, oidc, sign_in):
    response = sign_in("newbie")
    browser = response.browser
    logout = client.post("/accounts/logout/")
    assert signed_in_as(client) is None
    end_session = logout["Location"]
    assert end_session.startswith(f"{oidc.issuer}/session/end")
    params = parse_qs(urlparse(end_session).query)
    assert params["post_logout_redirect_uri"] == ["http://testserver/accounts/login/"]
    assert params["id_token_hint"][0].count(".") == 2
    # The provider asks "sign out?"; the person says yes and is sent back to the portal.
    page = browser.get(end_session, timeout=10)
    assert "Yes, sign me out" in page.text
    import re

    action = re.search(r'action="([^"]+)"', page.text).group(1)
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text).group(1)
    done = browser.post(
        requests.compat.urljoin(end_session, action),
        data={"xsrf": xsrf, "logout": "yes"},
        allow_redirects=False,
        timeout=10,
    )
    assert done.headers["Location"].startswith("http://testserver/accounts/login/")
    # The provider's session is gone: the next sign-in asks for the password again.
    start = client.get("/accounts/oidc/login/")["Location"]
    login_page = browser.get(start, timeout=10)
    assert 'name="password"' in login_page.text


def test_a_password_logout_does_not_go_to_the_provider(client, oidc, charlie, password):
    client.post("/accounts/login/", {"username": "charlie", "password": password})
    assert client.post("/accounts/logout/")["Location"] == "http://testserver/accounts/login/"


# --- Who may use a password -------------------------------------------------------------------


def test_local_login_none_refuses_every_password(client, oidc, settings, root, password):
    settings.LOCAL_LOGIN = "none"
    response = client.post("/accounts/login/", {"username": "root", "password": password})
    assert response.status_code == 200
    assert "signs in with Example SSO" in response.content.decode()
    assert signed_in_as(client) is None
    assert 'name="password"' not in client.get("/accounts/login/").content.decode()


def test_local_login_none_holds_for_django_admins_login_too(client, oidc, settings, root, password):
    settings.LOCAL_LOGIN = "none"
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": password})
    assert response.status_code == 200
    assert "signs in with Example SSO" in response.content.decode()
    assert signed_in_as(client) is None


def test_local_login_superusers_lets_only_superusers_use_a_password(
    client, oidc, settings, root, charlie, password
):
    settings.LOCAL_LOGIN = "superusers"
    refused = client.post("/accounts/login/", {"username": "charlie", "password": password})
    assert "signs in with Example SSO" in refused.content.decode()
    assert (
        client.post("/accounts/login/", {"username": "root", "password": password}).status_code
        == 302
    )


def test_a_provider_sign_in_is_not_asked_for_a_second_factor(client, oidc, sign_in, adam, settings):
    settings.SECOND_FACTOR_REQUIRED = True
    adam.email = "adam@example.com"
    adam.save()
    sign_in("adam.sso")
    assert client.get("/tenants/").status_code == 200


# --- Re-authentication before a sensitive change ----------------------------------------------


def test_a_provider_user_confirms_a_sensitive_change_by_signing_in_there_again(
    client, oidc, sign_in
):
    from trunks.reauth import REAUTH_SESSION_KEY

    first = sign_in("newbie")
    page = client.get("/accounts/confirm-password/?next=/tenants/alpha/key/")
    assert "Sign in again to confirm" in page.content.decode()
    start = client.get("/accounts/oidc/login/?reauth=1&next=/tenants/alpha/key/")
    params = parse_qs(urlparse(start["Location"]).query)
    assert params["prompt"] == ["login"] and params["max_age"] == ["0"]
    # The provider asks for the password again although its session is alive.
    login_page = first.browser.get(start["Location"], timeout=10)
    assert 'name="password"' in login_page.text
    callback = provider_leg(first.browser, start["Location"], "newbie", "provider-password-1")
    response = client.get(callback)
    assert response["Location"] == "/tenants/alpha/key/"
    assert REAUTH_SESSION_KEY in client.session


def test_confirming_as_someone_else_at_the_provider_is_refused(client, oidc, sign_in):
    from trunks.reauth import REAUTH_SESSION_KEY

    first = sign_in("newbie")
    start = client.get("/accounts/oidc/login/?reauth=1")
    callback = provider_leg(first.browser, start["Location"], "dora", "provider-password-1")
    response = client.get(callback)
    assert response.status_code == 403
    assert "someone else" in response.content.decode()
    assert REAUTH_SESSION_KEY not in client.session
    assert last_event().reason == "reauth_other_user"
