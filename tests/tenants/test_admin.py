"""Django admin: the API key is write-only there too, and changes go through the audited services."""

import pytest

from trunks.models import AuditKind, AuditRecord, Membership, Role, Tenant
from trunks.tenants import services

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

KEY = "admin-site-key-QRST4321"


def _form(tenant, **extra):
    data = {
        "name": tenant.name,
        "slug": tenant.slug,
        "is_active": "on",
        "base_url": tenant.base_url,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": str(tenant.memberships.count() if tenant.pk else 0),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    data.update(extra)
    return data


def test_admin_shows_only_the_masked_key(client, root, tenant_a):
    services.tenant_credential_set(actor=root, tenant=tenant_a, api_key=KEY)
    tenant_a.refresh_from_db()
    client.force_login(root)
    html = client.get(f"/admin/trunks/tenant/{tenant_a.pk}/change/").content.decode()
    assert "••••4321" in html
    assert KEY not in html and tenant_a.api_key_ciphertext not in html
    assert 'type="password" name="api_key"' in html
    listing = client.get("/admin/trunks/tenant/").content.decode()
    assert "••••4321" in listing and tenant_a.api_key_ciphertext not in listing


def test_admin_sets_and_replaces_the_key_through_the_service(client, root, tenant_a, reauth_fresh):
    client.force_login(root)
    reauth_fresh(client)
    url = f"/admin/trunks/tenant/{tenant_a.pk}/change/"
    response = client.post(url, _form(tenant_a, api_key=KEY))
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant_a.refresh_from_db()
    assert tenant_a.api_key_last4 == "4321" and tenant_a.api_key_set_by == root

    response = client.post(url, _form(tenant_a, api_key="replacement-key-0001"))
    assert response.status_code == 200
    assert "tick to confirm replacing it" in response.content.decode()
    response = client.post(
        url, _form(tenant_a, api_key="replacement-key-0001", confirm_replace="on")
    )
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.api_key_last4 == "0001"
    kinds = set(AuditRecord.objects.filter(tenant=tenant_a).values_list("kind", flat=True))
    assert {AuditKind.KEY_SET, AuditKind.KEY_REPLACED} <= kinds


def test_admin_creates_a_tenant_with_an_audit_record(client, root, reauth_fresh):
    client.force_login(root)
    reauth_fresh(client)
    data = _form(Tenant(name="Foxtrot", slug="foxtrot"), api_key=KEY)
    data["memberships-INITIAL_FORMS"] = "0"
    response = client.post("/admin/trunks/tenant/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    tenant = Tenant.objects.get(slug="foxtrot")
    assert tenant.api_key_last4 == "4321"
    kinds = list(
        AuditRecord.objects.filter(tenant=tenant)
        .order_by("chain_seq")
        .values_list("kind", flat=True)
    )
    assert kinds == [AuditKind.TENANT_CREATED, AuditKind.KEY_SET]


def test_admin_refuses_a_reserved_short_name(client, root):
    client.force_login(root)
    data = _form(Tenant(name="New", slug="new"))
    data["memberships-INITIAL_FORMS"] = "0"
    response = client.post("/admin/trunks/tenant/add/", data)
    assert response.status_code == 200
    assert "reserved" in response.content.decode()
    assert not Tenant.objects.exists()


def test_admin_memberships_are_audited(client, root, tenant_a, bob):
    client.force_login(root)
    response = client.post(
        "/admin/trunks/membership/add/", {"user": bob.pk, "tenant": tenant_a.pk, "role": "staff"}
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user=bob, tenant=tenant_a)
    response = client.post(f"/admin/trunks/membership/{membership.pk}/change/", {"role": "manager"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.MANAGER
    response = client.post(f"/admin/trunks/membership/{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    kinds = list(
        AuditRecord.objects.filter(tenant=tenant_a)
        .order_by("chain_seq")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        AuditKind.MEMBER_ADDED,
        AuditKind.MEMBER_ROLE_CHANGED,
        AuditKind.MEMBER_REMOVED,
    ]


def test_admin_asks_for_the_password_before_setting_a_key(client, root, tenant_a):
    client.force_login(root)
    url = f"/admin/trunks/tenant/{tenant_a.pk}/change/"
    response = client.post(url, _form(tenant_a, api_key=KEY))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/confirm-password/")
    tenant_a.refresh_from_db()
    assert not tenant_a.has_api_key
    # Other changes need no password.
    response = client.post(url, _form(tenant_a, name="Alpha Renamed"))
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.name == "Alpha Renamed"
