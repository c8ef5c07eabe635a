"""Test connection: the balance call through the Crazytel client, patched only at the HTTP edge."""

import secrets
from decimal import Decimal

import pytest
import requests
import responses
from cryptography.fernet import Fernet
from django.core.management import call_command

from trunks.models import AuditKind, AuditRecord, AuditStatus, Tenant
from trunks.tenants import services

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

BASE = "https://crazytel.test/api/v1"
BALANCE_URL = f"{BASE}/balance/"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def api_key():
    # A new key per test: the rate limiter and circuit breaker keep per-key state in the shared
    # cache (Redis in CI), which must not carry over from one test, or one run, to the next.
    return f"balance-key-{secrets.token_hex(6)}"


@pytest.fixture
def keyed(tenant_a, adam, api_key):
    tenant_a.base_url = BASE
    tenant_a.save()
    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=api_key)
    tenant_a.refresh_from_db()
    return tenant_a


@pytest.fixture
def crazytel():
    with responses.RequestsMock() as mock:
        yield mock


def _last_event(tenant):
    return AuditRecord.objects.filter(tenant=tenant, kind=AuditKind.CONNECTION_TESTED).latest(
        "chain_seq"
    )


def test_a_passing_test_shows_the_account_and_balance_and_sends_the_right_key(
    keyed, adam, crazytel, api_key
):
    crazytel.get(BALANCE_URL, json={"account_code": "0000007", "balance": 2405.44})
    result = services.tenant_connection_test(actor=adam, tenant=keyed)
    assert result.ok and result.account_code == "0000007"
    assert result.balance == Decimal("2405.44")
    assert crazytel.calls[0].request.headers["x-crazytel-api-key"] == api_key
    keyed.refresh_from_db()
    assert keyed.connection_ok is True and keyed.connection_checked_at
    event = _last_event(keyed)
    assert event.status == AuditStatus.SUCCEEDED
    assert event.data == {"ok": True, "account_code": "0000007"}
    assert api_key not in str(event.data) + event.error_message


def test_a_rejected_key_marks_the_connection_failing_until_a_test_passes(
    keyed, adam, crazytel, client
):
    crazytel.get(BALANCE_URL, status=401, json={"detail": "Invalid API key"})
    result = services.tenant_connection_test(actor=adam, tenant=keyed)
    assert not result.ok and result.category == "rejected_key"
    keyed.refresh_from_db()
    assert keyed.connection_ok is False and "rejected" in keyed.connection_message
    event = _last_event(keyed)
    assert event.status == AuditStatus.FAILED and event.data["error_category"] == "rejected_key"

    client.force_login(adam)
    listing = client.get("/tenants/").content.decode()
    assert "failing" in listing

    crazytel.replace(responses.GET, BALANCE_URL, json={"account_code": "1", "balance": 0})
    assert services.tenant_connection_test(actor=adam, tenant=keyed).ok
    keyed.refresh_from_db()
    assert keyed.connection_ok is True and keyed.connection_message.startswith("Connected")


@pytest.mark.parametrize(
    ("reply", "category"),
    [
        ({"status": 500, "body": "<html><h1>Internal Server Error</h1></html>"}, "upstream"),
        ({"status": 200, "body": "not json"}, "upstream"),
        ({"status": 429, "json": {"detail": "Too many requests"}}, "rate_limited"),
        ({"body": requests.ConnectTimeout("no answer")}, "unreachable"),
        ({"body": requests.ReadTimeout("lost")}, "unknown"),
    ],
)
def test_an_upstream_failure_is_a_clear_message_not_a_crash(
    keyed, adam, crazytel, client, reply, category, api_key
):
    crazytel.get(BALANCE_URL, **reply)
    client.force_login(adam)
    response = client.post("/tenants/alpha/test/", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Connection failed:" in html
    keyed.refresh_from_db()
    assert keyed.connection_ok is False and keyed.connection_message
    assert _last_event(keyed).data["error_category"] == category
    assert api_key not in html


def test_the_htmx_button_shows_account_code_and_balance_inline(keyed, adam, crazytel, client):
    crazytel.get(BALANCE_URL, json={"account_code": "0000007", "balance": 12.5})
    client.force_login(adam)
    html = client.post("/tenants/alpha/test/", headers=HTMX).content.decode()
    assert html.lstrip().startswith('<section class="card" id="tenant-state"')
    assert "0000007" in html and "12.5" in html and "Connection works." in html


def test_without_javascript_the_result_comes_as_a_message(keyed, adam, crazytel, client):
    crazytel.get(BALANCE_URL, json={"account_code": "0000007", "balance": 12.5})
    client.force_login(adam)
    response = client.post("/tenants/alpha/test/", follow=True)
    assert "Connection works: account 0000007, balance $12.50." in response.content.decode()


def test_no_key_means_no_call_and_a_clear_answer(tenant_a, adam, crazytel):
    result = services.tenant_connection_test(actor=adam, tenant=tenant_a)
    assert not result.ok and "No API key" in result.message
    assert len(crazytel.calls) == 0


def test_an_undecryptable_key_is_a_clear_answer_and_nothing_is_sent(
    keyed, adam, crazytel, settings
):
    settings.CREDENTIALS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    result = services.tenant_connection_test(actor=adam, tenant=keyed)
    assert not result.ok and "cannot be decrypted" in result.message
    assert len(crazytel.calls) == 0


def test_after_rotation_the_portal_still_sends_the_right_key(
    keyed, adam, crazytel, settings, api_key
):
    old = list(settings.CREDENTIALS_ENCRYPTION_KEYS)
    settings.CREDENTIALS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old]
    call_command("credentials_rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.CREDENTIALS_ENCRYPTION_KEYS = settings.CREDENTIALS_ENCRYPTION_KEYS[:1]
    crazytel.get(BALANCE_URL, json={"account_code": "0000007", "balance": 1})
    assert services.tenant_connection_test(actor=adam, tenant=Tenant.objects.get(pk=keyed.pk)).ok
    assert crazytel.calls[0].request.headers["x-crazytel-api-key"] == api_key


def test_only_the_tenants_admins_may_test(keyed, alice, mallory, bob):
    from trunks.errors import NotPermitted

    for actor in (alice, mallory, bob):
        with pytest.raises(NotPermitted):
            services.tenant_connection_test(actor=actor, tenant=keyed)


# --- Against the built-in sandbox over real HTTP (live_server) ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_demo_tenant_tests_its_connection_against_the_sandbox_after_a_key_rotation(
    live_server, settings
):
    """demo_seed's tenant, its key from the sandbox, rotated encryption key: the call still works."""
    import io

    from trunks.models import Membership, Role
    from trunks.sandbox.models import SandboxAccount

    call_command(
        "demo_seed", "--base-url", f"{live_server.url}/sandbox/api/v1", stdout=io.StringIO()
    )
    old = list(settings.CREDENTIALS_ENCRYPTION_KEYS)
    settings.CREDENTIALS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old]
    call_command("credentials_rotate", stdout=io.StringIO())
    settings.CREDENTIALS_ENCRYPTION_KEYS = settings.CREDENTIALS_ENCRYPTION_KEYS[:1]

    tenant = Tenant.objects.get(slug="demo")
    admin = Membership.objects.get(tenant=tenant, role=Role.ADMIN).user
    result = services.tenant_connection_test(actor=admin, tenant=tenant)
    account = SandboxAccount.objects.get(name="Demo team")
    assert result.ok, result.message
    assert result.account_code == account.account_code
    assert result.balance == account.balance

    # A key the sandbox does not know: 401, and the tenant shows as failing.
    services.tenant_credential_set(actor=admin, tenant=tenant, api_key="not-the-sandbox-key")
    tenant.refresh_from_db()
    result = services.tenant_connection_test(actor=admin, tenant=tenant)
    assert not result.ok and result.category == "rejected_key"
    tenant.refresh_from_db()
    assert tenant.connection_ok is False
