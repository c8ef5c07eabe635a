"""The admins' pages at /tenants/: what an admin does there, with and without htmx."""

import re

import pytest

from trunks.models import AuditKind, AuditRecord, Membership, Role, Tenant

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

KEY = "portal-key-ABCDEFGH1234"
HTMX = {"HX-Request": "true"}


def test_an_admin_creates_a_tenant_sets_its_key_and_adds_staff_from_the_portal(
    client, root, reauth_fresh
):
    client.force_login(root)
    reauth_fresh(client)
    page = client.get("/tenants/").content.decode()
    assert 'href="/tenants/new/"' in page

    response = client.post(
        "/tenants/new/", {"name": "Delta Voice", "slug": "delta", "is_active": "on"}
    )
    assert response.status_code == 302 and response["Location"] == "/tenants/delta/"
    detail = client.get("/tenants/delta/").content.decode()
    assert "Set the API key" in detail and "no key" in detail

    response = client.post("/tenants/delta/key/", {"api_key": KEY}, follow=True)
    html = response.content.decode()
    assert "••••1234" in html and KEY not in html
    assert 'name="api_key"' in html and 'value="' + KEY not in html

    response = client.post(
        "/tenants/delta/members/",
        {"username": "dora", "role": "staff", "create_user": "on"},
    )
    assert response.status_code == 200
    assert (
        response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    )
    password = re.search(r'<code id="new-password">([^<]+)</code>', response.content.decode())[1]
    client.logout()
    login = client.post("/accounts/login/", {"username": "dora", "password": password})
    assert login.status_code == 302  # the password shown works

    tenant = Tenant.objects.get(slug="delta")
    kinds = list(
        AuditRecord.objects.filter(tenant=tenant)
        .order_by("chain_seq")
        .values_list("kind", flat=True)
    )
    assert kinds == [AuditKind.TENANT_CREATED, AuditKind.KEY_SET, AuditKind.MEMBER_ADDED]
    assert Membership.objects.get(tenant=tenant, user__username="dora").role == Role.STAFF


def test_the_list_shows_each_tenants_state(client, root, tenant_a, tenant_b):
    from trunks.tenants import services

    services.tenant_credential_set(actor=root, tenant=tenant_a, api_key=KEY)
    services.tenant_connection_mark_failed(tenant=tenant_a)
    services.tenant_set_active(actor=root, tenant=tenant_b, is_active=False)
    client.force_login(root)
    html = client.get("/tenants/").content.decode()
    alpha_row = html[html.index("Alpha Telecom") : html.index("</tr>", html.index("Alpha Telecom"))]
    bravo_row = html[
        html.index("Bravo Networks") : html.index("</tr>", html.index("Bravo Networks"))
    ]
    assert "••••1234" in alpha_row and "failing" in alpha_row and "active" in alpha_row
    assert "no key" in bravo_row and "deactivated" in bravo_row and "untested" in bravo_row


def test_a_tenant_admin_lists_only_their_tenants_and_cannot_create(client, adam, tenant_b):
    client.force_login(adam)
    html = client.get("/tenants/").content.decode()
    assert "Alpha Telecom" in html and "Bravo Networks" not in html
    assert "/tenants/new/" not in html
    assert client.get("/tenants/new/").status_code == 403


def test_replacing_a_key_needs_the_confirmation_box(client, adam, tenant_a, reauth_fresh):
    client.force_login(adam)
    reauth_fresh(client)
    client.post("/tenants/alpha/key/", {"api_key": KEY})
    response = client.post("/tenants/alpha/key/", {"api_key": "another-key-5678"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Tick the box to confirm" in html
    assert 'aria-describedby="id_confirm_replace_error"' in html
    assert "another-key-5678" not in html  # never echoed back, not even after an error
    tenant_a.refresh_from_db()
    assert tenant_a.api_key_last4 == "1234"

    response = client.post(
        "/tenants/alpha/key/", {"api_key": "another-key-5678", "confirm_replace": "on"}
    )
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.api_key_last4 == "5678"


def test_key_form_errors_come_back_inline_with_htmx(client, adam, tenant_a, reauth_fresh):
    client.force_login(adam)
    reauth_fresh(client)
    response = client.post("/tenants/alpha/key/", {"api_key": "has spaces in it"}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="key"')
    assert "<html" not in html
    assert re.search(r'aria-describedby="[^"]*\bid_api_key_error\b', html)
    assert 'aria-invalid="true"' in html
    assert "has spaces in it" not in html


def test_setting_the_key_with_htmx_updates_the_state_out_of_band(
    client, adam, tenant_a, reauth_fresh
):
    client.force_login(adam)
    reauth_fresh(client)
    html = client.post("/tenants/alpha/key/", {"api_key": KEY}, headers=HTMX).content.decode()
    assert "API key set: ••••1234" in html
    assert 'id="tenant-state" aria-labelledby="tenant-state-title" hx-swap-oob="true"' in html
    assert KEY not in html


def test_deactivate_and_activate(client, adam, tenant_a):
    client.force_login(adam)
    response = client.post(
        "/tenants/alpha/active/", {"is_active": "0", "confirm": "yes"}, headers=HTMX
    )
    assert "is deactivated" in response.content.decode()
    tenant_a.refresh_from_db()
    assert not tenant_a.is_active
    response = client.post("/tenants/alpha/active/", {"is_active": "1"})
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.is_active
    # A hand-made request with nonsense changes nothing.
    client.post("/tenants/alpha/active/", {"is_active": "maybe"})
    tenant_a.refresh_from_db()
    assert tenant_a.is_active


def test_edit_keeps_the_base_url_for_tenant_admins(client, adam, tenant_a, root):
    tenant_a.base_url = "https://api.example.com"
    tenant_a.save()
    client.force_login(adam)
    form = client.get("/tenants/alpha/edit/").content.decode()
    assert re.search(r'<input[^>]*name="base_url"[^>]*disabled', form)
    response = client.post(
        "/tenants/alpha/edit/",
        {
            "name": "Alpha Two",
            "slug": "alpha",
            "base_url": "https://evil.example",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert (tenant_a.name, tenant_a.base_url) == ("Alpha Two", "https://api.example.com")


def test_edit_shows_a_taken_short_name_as_a_field_error(client, root, tenant_a, tenant_b):
    client.force_login(root)
    response = client.post(
        "/tenants/alpha/edit/", {"name": "Alpha Telecom", "slug": "bravo", "is_active": "on"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Another tenant already has this short name." in html
    assert re.search(r'aria-describedby="[^"]*\bid_slug_error\b', html)


def test_superusers_are_told_a_username_does_not_exist(client, root, tenant_a):
    client.force_login(root)
    response = client.post(
        "/tenants/alpha/members/", {"username": "ghost", "role": "staff"}, headers=HTMX
    )
    html = response.content.decode()
    assert "There is no user called “ghost”" in html
    assert 'id="id_username_error"' in html
    assert 'value="ghost"' in html  # nothing typed is lost


def test_adding_a_user_of_another_admin_tenant_with_htmx_lists_them(
    client, adam, tenant_a, tenant_b, bob
):
    Membership.objects.create(user=adam, tenant=tenant_b, role=Role.ADMIN)
    client.force_login(adam)
    html = client.post(
        "/tenants/alpha/members/", {"username": "bob", "role": "manager"}, headers=HTMX
    ).content.decode()
    assert "bob added as Manager" in html
    assert html.lstrip().startswith('<section class="card" id="members"')


def test_creating_a_user_with_htmx_shows_the_password_once(client, adam, tenant_a):
    client.force_login(adam)
    response = client.post(
        "/tenants/alpha/members/",
        {"username": "newbie", "role": "staff", "create_user": "on"},
        headers=HTMX,
    )
    password = re.search(r'<code id="new-password">([^<]+)</code>', response.content.decode())[1]
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    again = client.get("/tenants/alpha/").content.decode()
    assert password not in again


def test_changing_a_role(client, adam, alice, tenant_a):
    client.force_login(adam)
    membership = Membership.objects.get(user=alice)
    html = client.post(
        f"/tenants/alpha/members/{membership.pk}/role/", {"role": "manager"}, headers=HTMX
    ).content.decode()
    assert "alice is now Manager" in html
    membership.refresh_from_db()
    assert membership.role == Role.MANAGER


def test_the_last_admin_cannot_demote_themselves(client, adam, tenant_a):
    client.force_login(adam)
    own = Membership.objects.get(user=adam)
    response = client.post(f"/tenants/alpha/members/{own.pk}/role/", {"role": "staff"}, follow=True)
    assert "only admin" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.ADMIN


def test_removing_a_member_asks_for_confirmation(client, adam, alice, tenant_a):
    client.force_login(adam)
    membership = Membership.objects.get(user=alice)
    url = f"/tenants/alpha/members/{membership.pk}/remove/"
    page = client.get(url).content.decode()
    assert "Remove alice from Alpha Telecom?" in page
    response = client.post(url, {})
    assert response.status_code == 200
    assert Membership.objects.filter(pk=membership.pk).exists()
    response = client.post(url, {"confirm": "on"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert alice.__class__.objects.filter(pk=alice.pk).exists()  # the account stays


def test_staff_of_a_tenant_get_404_on_its_admin_pages(client, alice, mallory, tenant_a):
    for user in (alice, mallory):
        client.force_login(user)
        assert client.get("/tenants/alpha/").status_code == 404
        assert client.get("/tenants/").status_code == 403


def test_setting_a_key_asks_for_the_password_again_first(client, adam, tenant_a, password):
    client.force_login(adam)
    page = client.get("/tenants/alpha/").content.decode()
    assert "Confirm your password" in page and 'name="api_key"' not in page

    response = client.post("/tenants/alpha/key/", {"api_key": KEY})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/confirm-password/")
    response = client.post("/tenants/alpha/key/", {"api_key": KEY}, headers=HTMX)
    assert response["HX-Redirect"].startswith("/accounts/confirm-password/")
    tenant_a.refresh_from_db()
    assert not tenant_a.has_api_key

    client.post("/accounts/confirm-password/", {"password": password, "next": "/tenants/alpha/"})
    assert 'name="api_key"' in client.get("/tenants/alpha/").content.decode()
    assert client.post("/tenants/alpha/key/", {"api_key": KEY}).status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.api_key_last4 == "1234"


def test_another_tenants_key_page_is_404_before_any_password_prompt(client, bob, tenant_a):
    client.force_login(bob)
    assert client.post("/tenants/alpha/key/", {"api_key": KEY}).status_code == 404


def test_missing_encryption_keys_are_a_clear_message_not_a_crash(
    client, adam, tenant_a, reauth_fresh, settings
):
    settings.CREDENTIALS_ENCRYPTION_KEYS = []
    client.force_login(adam)
    reauth_fresh(client)
    response = client.post("/tenants/alpha/key/", {"api_key": KEY})
    html = response.content.decode()
    assert response.status_code == 200
    assert "The portal cannot store API keys right now" in html
    assert "CREDENTIALS_ENCRYPTION_KEYS is not set" in html
    tenant_a.refresh_from_db()
    assert not tenant_a.has_api_key
