"""The fault matrix: every way Crazytel can misbehave, through the real trunk form over real HTTP.

Each case posts the trunk form (view → trunks.provisioning.services.trunk_create → the trunks.crazytel client) to the
built-in sandbox served by live_server, with one of the sandbox's injected faults, and checks what
the README's table promises: the documented message on the form, the right audit status, no 500
page, no secret (the tenant's API key, the trunk password) in the page or the record, and exactly
one upstream create — also when the same form is posted a second time.
"""

import html
import json
import re
import socket
import uuid

import pytest
from django.core.cache import cache
from django.test import Client

from tests.provisioning.faults import (
    CLOSED_PORT,
    IN_SANDBOX,
    ORDINARY_TIMEOUT,
    READ_TIMEOUT,
    outlasts_timeout,
)
from tests.trunk_fixtures import key_tenant, token_from
from tests.waiting import wait_until
from trunks.models import AuditKind, AuditRecord, AuditStatus
from trunks.provisioning.numbers import verified_numbers_cache_key
from trunks.sandbox import views as sandbox_views
from trunks.sandbox.models import SandboxRateWindow, SandboxTrunk
from trunks.sandbox.services import sandbox_account_ensure, sandbox_faults_set

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/trunks/new/"
PASSWORD = "Fault9MatrixPassw0rd"


class SandboxRequests:
    """Which requests reached the sandbox's endpoints (past its key check), by kind."""

    def __init__(self):
        self.kinds: list[str] = []

    @property
    def creates(self) -> int:
        return self.kinds.count("create")


@pytest.fixture
def sandbox_requests(monkeypatch):
    """Count the sandbox's requests as it serves them (live_server runs in this process)."""
    seen = SandboxRequests()
    real = sandbox_views._fault_applies

    def recording(account, kind):
        seen.kinds.append(kind)
        return real(account, kind)

    monkeypatch.setattr(sandbox_views, "_fault_applies", recording)
    return seen


@pytest.fixture
def api_key():
    # A fresh key per test: the shared rate limiter and breaker (Redis or database) are per key.
    return f"ctsbx_fault_{uuid.uuid4().hex}"


@pytest.fixture
def sandbox(live_server, tenant_a, settings, fresh_cache, api_key):
    # Short (the faults that outlast a timeout set a shorter one still: see the test).
    settings.CRAZYTEL_TIMEOUT = ORDINARY_TIMEOUT
    account = sandbox_account_ensure(name="Fault matrix", api_key=api_key)
    key_tenant(tenant_a, api_key, base_url=f"{live_server.url}/sandbox/api/v1")
    return account


@pytest.fixture
def staff_client(alice):
    client = Client()
    client.force_login(alice)
    return client


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _point_at_closed_port(tenant) -> None:
    """Crazytel goes away after the form was shown: its numbers were read a moment ago (cached),
    but nothing listens at its address any more."""
    numbers = cache.get(verified_numbers_cache_key(tenant=tenant))
    assert numbers is not None, "the form's GET cached the verified numbers"
    tenant.base_url = f"http://127.0.0.1:{_closed_port()}/api/v1"
    tenant.save(update_fields=["base_url"])
    cache.set(verified_numbers_cache_key(tenant=tenant), numbers, 300)


def _form_data(token: str, caller_id: str) -> dict:
    return {
        "submission_token": token,
        "caller_id_number": caller_id,
        "password": PASSWORD,
        "description": "Fault matrix",
        "area_code": "02",
        "enabled": "on",
        "softphone_show_balance": "on",
    }


def _wait_for_trunks(expected: int) -> int:
    """The sandbox may still be working after the portal stopped waiting: let it finish."""
    if expected:
        wait_until(lambda: SandboxTrunk.objects.count() >= expected, f"{expected} sandbox trunk(s)")
    return SandboxTrunk.objects.count()


def _assert_no_secret(text: str, api_key: str) -> None:
    assert PASSWORD not in text
    assert api_key not in text


@pytest.mark.parametrize("fault", IN_SANDBOX, ids=str)
def test_each_fault_over_real_http_gives_its_message_status_and_one_create_at_most(
    sandbox, tenant_a, staff_client, sandbox_requests, api_key, fault, settings
):
    status, message, trunks = fault.status, fault.message, fault.trunks
    landline = next(n["number"] for n in sandbox.verified_numbers if n["number"].startswith("612"))
    token = token_from(staff_client.get(URL).content.decode())  # reads and caches the numbers
    if fault.sandbox is CLOSED_PORT:
        _point_at_closed_port(tenant_a)
    else:
        sandbox_faults_set(account=sandbox, fault_scope="create", **fault.sandbox)
    if outlasts_timeout(fault.sandbox):
        settings.CRAZYTEL_TIMEOUT = READ_TIMEOUT  # waited out: as short as it can safely be

    response = staff_client.post(URL, _form_data(token, landline))
    page = html.unescape(response.content.decode())

    assert response.status_code == 200, page[:2000]
    assert message in page
    if status == AuditStatus.SUCCEEDED:
        assert page.count(PASSWORD) == 1, "the new trunk's password is shown once, on success"
        assert api_key not in page
    else:
        _assert_no_secret(page, api_key)

    record = AuditRecord.objects.get(kind=AuditKind.TRUNK_CREATE)
    assert record.status == status
    assert record.is_final and record.record_hash
    _assert_no_secret(json.dumps([record.data, record.response, record.error_message]), api_key)
    if status == AuditStatus.SUCCEEDED:
        trunk = SandboxTrunk.objects.get()
        assert record.trunk_username == trunk.username
        assert f"Trunk {trunk.username} created" in page
    else:
        assert message in record.error_message
        assert record.error_category == fault.category
        assert 'name="password"' in page, "the form is shown again to correct or retry"
        if fault.field:
            assert re.search(rf'name="{fault.field}"[^>]*aria-invalid="true"', page)
    if status == AuditStatus.UNKNOWN:
        # An unknown outcome is never retried by itself: a person must choose to, knowingly.
        assert "Try again anyway" in page
        assert f'name="retry_of" value="{record.uuid}"' in page

    # The same form posted again (double click, back button, a proxy's retry) shows the first
    # outcome and sends nothing.
    again = staff_client.post(URL, _form_data(token, landline))
    again_page = html.unescape(again.content.decode())
    assert again.status_code == 200
    assert "already submitted" in again_page or message in again_page
    _assert_no_secret(again_page, api_key)

    expected_creates = 0 if fault.sandbox is CLOSED_PORT else 1
    if outlasts_timeout(fault.sandbox):
        # The portal stopped waiting after READ_TIMEOUT: on a busy machine the sandbox may not
        # have reached the create's fault by then.
        wait_until(lambda: sandbox_requests.creates, "the create to reach the sandbox")
    assert sandbox_requests.creates == expected_creates
    assert _wait_for_trunks(trunks) == trunks
    assert AuditRecord.objects.filter(kind=AuditKind.TRUNK_CREATE).count() == 1
    # Every request the sandbox counted: the numbers read by the first GET, and the one create.
    counted = sum(SandboxRateWindow.objects.values_list("count", flat=True))
    assert counted == 1 + expected_creates


def test_an_open_circuit_breaker_sends_nothing_and_says_so(
    sandbox, staff_client, sandbox_requests, api_key, settings
):
    """After repeated 5xx the portal stops calling Crazytel for a while (the matrix's 500s, five
    times over), and a further submission is refused before anything is sent."""
    settings.CRAZYTEL_BREAKER_THRESHOLD = 2
    landline = next(n["number"] for n in sandbox.verified_numbers if n["number"].startswith("612"))
    sandbox_faults_set(account=sandbox, fault_scope="create", forced_status=500)
    for _ in range(2):
        token = token_from(staff_client.get(URL).content.decode())
        staff_client.post(URL, _form_data(token, landline))
    assert sandbox_requests.creates == 2

    token = token_from(staff_client.get(URL).content.decode())
    response = staff_client.post(URL, _form_data(token, landline))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert sandbox_requests.creates == 2, "nothing was sent while the breaker is open"
    assert "Crazytel is failing; the portal paused calls for" in page
    assert "Nothing was sent" in page
    _assert_no_secret(page, api_key)
    last = AuditRecord.objects.filter(kind=AuditKind.TRUNK_CREATE).order_by("-id").first()
    # Held back by the portal, not refused by Crazytel: recorded as such.
    assert last.status == AuditStatus.NOT_SENT
