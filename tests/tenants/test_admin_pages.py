"""Issue 15.8: the tenant admin pages — a key is tried before it is saved, deactivating asks
first, the balance reads as money, the short name is suggested, a connection error shows once."""

import re
import secrets

import pytest
import responses

from trunks.models import AuditKind, AuditRecord, Tenant
from trunks.templatetags.money import money
from trunks.tenants import services

BASE = "https://crazytel.test/api/v1"
BALANCE_URL = f"{BASE}/balance/"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def keys():
    # Fresh keys per test: the rate limiter keeps per-key state in the shared cache.
    return [f"key-{secrets.token_hex(6)}" for _ in range(2)]


@pytest.fixture
def working(tenant_a, adam, keys):
    tenant_a.base_url = BASE
    tenant_a.save()
    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=keys[0])
    Tenant.objects.filter(pk=tenant_a.pk).update(connection_ok=True)
    tenant_a.refresh_from_db()
    return tenant_a


@pytest.fixture
def crazytel():
    with responses.RequestsMock() as mock:
        yield mock


def _post_key(client, key, **extra):
    return client.post("/tenants/alpha/key/", {"api_key": key, "confirm_replace": "on", **extra})


def test_a_working_key_is_not_replaced_by_one_crazytel_rejects(
    client, adam, working, keys, crazytel, reauth_fresh
):
    crazytel.get(BALANCE_URL, status=401, json={"message": "Unauthenticated."})
    client.force_login(adam)
    reauth_fresh(client)
    html = _post_key(client, keys[1]).content.decode()
    assert "Crazytel rejected this key (401), so the current key stays" in html
    assert keys[1] not in html
    working.refresh_from_db()
    assert working.api_key_last4 == keys[0][-4:]


def test_save_anyway_replaces_it_all_the_same(client, adam, working, keys, crazytel, reauth_fresh):
    crazytel.get(BALANCE_URL, status=401, json={"message": "Unauthenticated."})
    client.force_login(adam)
    reauth_fresh(client)
    assert _post_key(client, keys[1], save_anyway="on").status_code == 302
    working.refresh_from_db()
    assert working.api_key_last4 == keys[1][-4:] and working.connection_ok is False
    event = AuditRecord.objects.filter(kind=AuditKind.KEY_REPLACED).latest("pk")
    assert event.data["tried"] == "rejected_key" and event.data["saved_anyway"] is True


def test_a_key_crazytel_accepts_is_saved_with_the_connection_ok(
    client, adam, working, keys, crazytel, reauth_fresh
):
    crazytel.get(BALANCE_URL, json={"account_code": "0000007", "balance": 100})
    client.force_login(adam)
    reauth_fresh(client)
    html = client.post(
        "/tenants/alpha/key/", {"api_key": keys[1], "confirm_replace": "on"}, headers=HTMX
    ).content.decode()
    assert "Crazytel accepts it: Connected to account 0000007." in html
    working.refresh_from_db()
    assert working.connection_ok is True and working.api_key_last4 == keys[1][-4:]


def test_deactivating_asks_for_confirmation_first(client, adam, tenant_a):
    client.force_login(adam)
    page = client.get("/tenants/alpha/").content.decode()
    assert 'href="/tenants/alpha/deactivate/"' in page
    # A bare POST (an old form, a hand-made request) is sent to the question, not obeyed.
    response = client.post("/tenants/alpha/active/", {"is_active": "0"})
    assert response["Location"] == "/tenants/alpha/deactivate/"
    tenant_a.refresh_from_db()
    assert tenant_a.is_active
    question = client.get("/tenants/alpha/deactivate/").content.decode()
    assert "Deactivate Alpha Telecom?" in question
    client.post("/tenants/alpha/active/", {"is_active": "0", "confirm": "yes"})
    tenant_a.refresh_from_db()
    assert not tenant_a.is_active


def test_the_balance_shows_as_money(client, adam, working, crazytel):
    crazytel.get(BALANCE_URL, json={"account_code": "0000007", "balance": 100})
    client.force_login(adam)
    html = client.post("/tenants/alpha/test/", headers=HTMX).content.decode()
    assert "<dd>$100.00</dd>" in html


@pytest.mark.parametrize(
    ("value", "shown"),
    [(100, "$100.00"), ("12.5", "$12.50"), ("-5", "-$5.00"), ("1234567.891", "$1,234,567.89")],
)
def test_money_reads_as_dollars(value, shown):
    assert money(value) == shown


def test_a_connection_error_is_shown_once(client, adam, working, crazytel):
    crazytel.get(BALANCE_URL, status=401, json={"message": "Unauthenticated."})
    client.force_login(adam)
    html = client.post("/tenants/alpha/test/", headers=HTMX).content.decode()
    assert html.count("Crazytel rejected the API key (401)") == 1


def test_the_short_name_is_suggested_from_the_name_without_inline_script(client, root):
    client.force_login(root)
    html = client.get("/tenants/new/").content.decode()
    assert 'data-slug-from="id_name"' in html
    assert re.search(r'<script src="[^"]*js/tenant_form\.js" nonce="[^"]+" defer></script>', html)
    script = client.get("/static/js/tenant_form.js")
    assert script.status_code == 200
