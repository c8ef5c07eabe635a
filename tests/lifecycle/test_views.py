"""The trunks' pages over real HTTP: created on the form, then found, suspended, enabled, given a new
password and a new caller ID — against the built-in sandbox and the independent contract server."""

import html as html_module
import re

import pytest
from django.test import Client

from tests.crazytel.contract_server import ContractServer
from tests.e2e.journeys import closed_port_url
from tests.factories import UserFactory
from tests.provisioning.faults import (
    CHANGE_FAULTS,
    CLOSED_PORT,
    ORDINARY_TIMEOUT,
    READ_TIMEOUT,
    outlasts_timeout,
)
from tests.trunk_fixtures import key_tenant, token_from
from trunks.lifecycle.services import trunk_change
from trunks.models import AuditKind, AuditRecord, Role, Trunk
from trunks.sandbox.models import SandboxTrunk
from trunks.sandbox.services import sandbox_account_ensure, sandbox_faults_set

from .conftest import PATCH_URL, TRUNK_ID

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "ctk_life_live_7a6b5c4d3e2f1a0b"
PASSWORD = "Liv3TrunkPassw0rd"
NEW_PASSWORD = "N3wTrunkPassw0rdX"


@pytest.fixture
def staff_client(alice):
    client = Client()
    client.force_login(alice)
    return client


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _create(client) -> str:
    html = client.get("/trunks/new/").content.decode()
    caller = re.search(r'<option value="(612\d+)"', html).group(1)
    page = client.post(
        "/trunks/new/",
        {
            "submission_token": token_from(html),
            "caller_id_number": caller,
            "password": PASSWORD,
            "description": "Front desk",
            "enabled": "on",
            "softphone_show_balance": "on",
        },
    ).content.decode()
    return re.search(r"Trunk (CT\d{6}) created", page).group(1)


def _form(html: str, action: str) -> dict:
    """The hidden fields (token, version) of the trunk page's form posting to `action`."""
    form = re.search(rf'action="[^"]*/{action}/"(.*?)</form>', html, re.S).group(1)
    return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))


def _act(client, username, action, **fields):
    html = client.get(f"/trunks/{username}/").content.decode()
    data = _form(html, action) | fields
    return client.post(f"/trunks/{username}/{action}/", data)


@pytest.fixture
def sandbox(live_server, tenant_a, settings, fresh_cache):
    settings.CRAZYTEL_TIMEOUT = ORDINARY_TIMEOUT
    account = sandbox_account_ensure(name="Lifecycle live", api_key=KEY)
    key_tenant(tenant_a, KEY, base_url=f"{live_server.url}/sandbox/api/v1")
    return account


def test_staff_find_suspend_enable_repassword_and_recall_their_trunk_on_the_sandbox(
    sandbox, staff_client, alice, mallory
):
    username = _create(staff_client)
    listing = staff_client.get("/trunks/?q=Front").content.decode()
    assert username in listing
    page = _act(staff_client, username, "enabled", enabled="0", confirm="on").content.decode()
    assert "Saved: Crazytel applied the change" in page
    upstream = SandboxTrunk.objects.get(username=username)
    assert upstream.enabled is False
    assert "suspended" in staff_client.get("/trunks/?state=suspended").content.decode()

    _act(staff_client, username, "enabled", enabled="1")
    upstream.refresh_from_db()
    assert upstream.enabled is True

    response = _act(staff_client, username, "password", password=NEW_PASSWORD)
    assert NEW_PASSWORD in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    upstream.refresh_from_db()
    assert upstream.check_password(NEW_PASSWORD)
    assert NEW_PASSWORD not in staff_client.get(f"/trunks/{username}/").content.decode()

    other = next(
        n["number"] for n in sandbox.verified_numbers if n["number"].startswith("612")
        and n["number"] != upstream.caller_id_number
    )  # fmt: skip
    html = staff_client.get(f"/trunks/{username}/").content.decode()
    fields = _form(html, "settings") | {
        "caller_id_number": other,
        "description": "Front desk",
        "softphone_show_balance": "on",
    }
    staff_client.post(f"/trunks/{username}/settings/", fields)
    upstream.refresh_from_db()
    assert upstream.caller_id_number == other

    kinds = list(
        AuditRecord.objects.filter(trunk_username=username)
        .order_by("started_at")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        AuditKind.TRUNK_CREATE,
        AuditKind.TRUNK_SUSPENDED,
        AuditKind.TRUNK_ENABLED,
        AuditKind.TRUNK_PASSWORD_CHANGED,
        AuditKind.TRUNK_UPDATED,
    ]
    record = AuditRecord.objects.get(trunk_username=username, kind=AuditKind.TRUNK_UPDATED)
    detail = _client(mallory).get(f"/audit/{record.pk}/").content.decode()
    assert "Caller ID number" in detail and "→" in detail
    for record in AuditRecord.objects.all():
        assert NEW_PASSWORD not in str(record.data) + str(record.response)


def test_a_colleague_sees_but_cannot_change_and_other_tenants_get_404(
    sandbox, staff_client, tenant_a, bob
):
    username = _create(staff_client)
    carol = _client(UserFactory(username="carol", member_of=tenant_a, member_of__role=Role.STAFF))
    page = carol.get(f"/trunks/{username}/").content.decode()
    assert username in page and "Suspend trunk" not in page
    html = staff_client.get(f"/trunks/{username}/").content.decode()
    refused = carol.post(f"/trunks/{username}/enabled/", _form(html, "enabled") | {"enabled": "0"})
    assert refused.status_code == 403
    assert SandboxTrunk.objects.get(username=username).enabled is True
    outsider = _client(bob)
    assert outsider.get(f"/trunks/{username}/").status_code == 404
    assert username not in outsider.get("/trunks/").content.decode()
    assert outsider.post(f"/trunks/{username}/enabled/", {"enabled": "0"}).status_code == 404


def _fault_fields(sandbox, trunk: Trunk, action: str) -> dict:
    """What the person submits on the trunk's page for a fault row's `action`."""
    if action == "password":
        return {"password": NEW_PASSWORD}
    if action == "suspend":
        return {"enabled": "0", "confirm": "on"}
    other = next(
        n["number"] for n in sandbox.verified_numbers
        if n["number"].startswith("612") and n["number"] != trunk.caller_id_number
    )  # fmt: skip
    return {"caller_id_number": other, "description": trunk.description}


ACTION_PATHS = {"password": "password", "suspend": "enabled", "settings": "settings"}


@pytest.mark.parametrize("fault", CHANGE_FAULTS, ids=str)
def test_each_sandbox_fault_shows_its_message_on_the_trunk_page(
    sandbox, staff_client, tenant_a, fault, settings
):
    username = _create(staff_client)
    trunk = Trunk.objects.get(username=username)
    fields = _fault_fields(sandbox, trunk, fault.action)
    html = staff_client.get(f"/trunks/{username}/").content.decode()
    data = _form(html, ACTION_PATHS[fault.action]) | fields
    if fault.sandbox == CLOSED_PORT:
        key_tenant(tenant_a, KEY, base_url=closed_port_url())
    else:
        sandbox_faults_set(
            account=sandbox, fault_scope="create", fault_remaining=1, **fault.sandbox
        )
    if outlasts_timeout(fault.sandbox):
        settings.CRAZYTEL_TIMEOUT = READ_TIMEOUT  # waited out: as short as it can safely be
    response = staff_client.post(f"/trunks/{username}/{ACTION_PATHS[fault.action]}/", data)
    page = html_module.unescape(response.content.decode())
    assert response.status_code == 200
    assert fault.heading in page and fault.message in page
    assert NEW_PASSWORD not in page
    record = AuditRecord.objects.filter(trunk_username=username).latest("started_at")
    assert record.kind != AuditKind.TRUNK_CREATE
    assert (record.status, record.upstream_status) == (fault.status, fault.upstream_status)


def test_a_trunk_crazytel_no_longer_has_is_marked_missing(sandbox, staff_client):
    username = _create(staff_client)
    SandboxTrunk.objects.filter(username=username).delete()
    page = _act(staff_client, username, "enabled", enabled="0", confirm="on").content.decode()
    assert "Crazytel no longer has this trunk" in page
    assert Trunk.objects.get(username=username).state == "missing"


@pytest.fixture
def contract(fresh_cache):
    server = ContractServer(
        api_key=KEY,
        numbers=[("+61 2 9876 5432", "Sydney office"), ("+61 412 345 678", "Ops mobile")],
    ).start()
    yield server
    server.stop()


def test_suspend_on_the_independent_contract_server_sends_exactly_enabled_false(
    contract, tenant_a, staff_client
):
    key_tenant(tenant_a, KEY, base_url=contract.url)
    username = _create(staff_client)
    trunk = Trunk.objects.get(username=username)
    page = _act(staff_client, username, "enabled", enabled="0", confirm="on").content.decode()
    assert "Saved" in page
    [patch] = [r for r in contract.requests if r.method == "PATCH"]
    assert patch.path == f"/api/v1/sip-trunks/{trunk.trunk_id}"
    assert patch.headers["x-crazytel-api-key"] == KEY
    assert patch.json() == {"enabled": False}
    contract.then("no_content")
    page = _act(staff_client, username, "enabled", enabled="1").content.decode()
    assert "Saved" in page and Trunk.objects.get(username=username).enabled


def test_a_change_records_page_links_to_the_trunks_page(alices_trunk, alice, mallory, crazytel):
    """Every trunk record links to its trunk's page, not only the create (issue 13: "Audit
    records link to the trunk's page")."""
    crazytel.patch(PATCH_URL, json={"id": TRUNK_ID, "username": "CT123456", "enabled": False})
    result = trunk_change(
        actor=alice,
        trunk=alices_trunk,
        wanted={"enabled": False},
        version=alices_trunk.version,
        submission_token="tok-change-link-0001",
    )
    assert result.succeeded
    page = _client(mallory).get(f"/audit/{result.record.pk}/").content.decode()
    assert '<dt>Trunk</dt><dd><a href="/trunks/CT123456/">CT123456</a></dd>' in page
