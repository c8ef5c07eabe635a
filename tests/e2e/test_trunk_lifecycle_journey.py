"""Trunks after creation (issue 13) in Chromium, as each role sees them.

A staff member finds the trunk they made on /trunks/, suspends it (Crazytel receives exactly
{"enabled": false} with the key header at the trunk's id), enables it, gives it a new password (shown
once, in no page afterwards) and a new caller ID — against the built-in sandbox and against the
independent contract server. A manager reads each change as a before → after diff in the audit log
and filters it by kind. A colleague sees the trunk but cannot act on it; another tenant gets 404.
Every way Crazytel can fail a change shows its own message on the trunk's page (the fault table of
tests/provisioning/faults.py).
"""

import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.crazytel.contract_server import ContractServer, Recorded
from tests.factories import UserFactory
from tests.provisioning.faults import CHANGE_FAULTS, CLOSED_PORT, READ_TIMEOUT
from trunks.lifecycle.services import trunk_change
from trunks.models import AuditKind, AuditRecord, AuditStatus, Role, Trunk
from trunks.provisioning.services import trunk_create
from trunks.sandbox import views as sandbox_views
from trunks.sandbox.models import SandboxTrunk
from trunks.sandbox.services import sandbox_faults_clear, sandbox_faults_set

from .journeys import closed_port_url, sandbox_url, tenant_connect

CONTRACT_KEY = "ctk_journey_live_5e4d3c2b1a0f9e8d"
# The sandbox's numbers (tests/e2e/conftest.py NUMBERS_ALPHA) as the contract server writes them.
CONTRACT_NUMBERS = [
    ("+61 2 9876 5432", "Sydney office"),
    ("+61 3 8765 4321", ""),
    ("+61 412 345 678", "Ops mobile"),
]
SYDNEY, MELBOURNE = "61298765432", "61387654321"
NEW_PASSWORD = "Rotat3dTrunkPassw0rd"


def trunk_made(*, by, tenant, description: str, caller_id: str = SYDNEY) -> Trunk:
    """A trunk `by` made through the portal earlier (the create service over real HTTP; the create
    form's own journey is test_staff_journey.py)."""
    result = trunk_create(
        actor=by,
        tenant=tenant,
        data={
            "caller_id_number": caller_id,
            "sms_sender": "",
            "password": "Creat3dTrunkPassw0rd",
            "description": description,
            "area_code": "02",
            "enabled": True,
            "hide_caller_id": False,
            "softphone_show_balance": True,
            "softphone_sync_sms": False,
        },
        request=None,
        submission_token=f"journey-{uuid.uuid4().hex}",
    )
    assert result.succeeded, result.message
    return Trunk.objects.get(username=result.username)


@dataclass
class Upstream:
    """The Crazytel a journey's tenant talks to: what it holds, and every request it received (the
    contract server's own log; the sandbox's, as it reads each request's body)."""

    name: str
    tenant: object
    api_key: str
    received: list[Recorded]
    server: ContractServer | None = None

    def holds(self, username: str) -> dict:
        if self.server is not None:
            return dict(self.server.trunks[username])
        trunk = SandboxTrunk.objects.get(username=username)
        return {"enabled": trunk.enabled, "caller_id_number": trunk.caller_id_number}

    def has_password(self, username: str, password: str) -> bool:
        if self.server is not None:
            return self.server.trunks[username]["password"] == password
        return SandboxTrunk.objects.get(username=username).check_password(password)

    def patches(self) -> list[Recorded]:
        return [r for r in self.received if r.method == "PATCH"]

    def assert_last_patch(self, trunk: Trunk, body: dict, count: int) -> None:
        """The upstream received `count` changes so far, the last exactly `body` as JSON, with
        the tenant's key, at the trunk's id."""
        patches = self.patches()
        assert len(patches) == count, [(p.path, p.json()) for p in patches]
        last = patches[-1]
        assert last.path == f"{urlsplit(self.tenant.base_url).path}/sip-trunks/{trunk.trunk_id}"
        assert last.headers["x-crazytel-api-key"] == self.api_key
        assert last.headers["content-type"].startswith("application/json")
        assert last.json() == body


@pytest.fixture
def sandbox_received(monkeypatch) -> list[Recorded]:
    """Every trunk request the sandbox serves, as it reads its body (live_server runs in this
    process; the same kind of hook as tests/provisioning/test_fault_matrix.py's)."""
    received: list[Recorded] = []
    real = sandbox_views._parse_body

    def recording(request):
        headers = {name.lower(): value for name, value in request.headers.items()}
        received.append(Recorded(request.method, request.path, headers, request.body))
        return real(request)

    monkeypatch.setattr(sandbox_views, "_parse_body", recording)
    return received


@pytest.fixture(params=["sandbox", "contract-server"])
def upstream(request, tenant_a) -> Upstream:
    if request.param == "sandbox":
        tenant = request.getfixturevalue("alpha")
        key = request.getfixturevalue("sandbox_alpha").api_key
        return Upstream("sandbox", tenant, key, request.getfixturevalue("sandbox_received"))
    server = request.getfixturevalue("fresh_contract_server")
    tenant = tenant_connect(tenant_a, base_url=server.url, api_key=CONTRACT_KEY)
    return Upstream("contract-server", tenant, CONTRACT_KEY, server.requests, server)


@pytest.fixture
def fresh_contract_server():
    server = ContractServer(api_key=CONTRACT_KEY, numbers=CONTRACT_NUMBERS).start()
    yield server
    server.stop()


@pytest.fixture
def carol(tenant_a):
    """Staff in tenant A, alice's colleague."""
    return UserFactory(username="carol", member_of=tenant_a, member_of__role=Role.STAFF)


def outcome(page):
    """The panel that says what became of the last action on the trunk's page."""
    return page.locator("section.outcome")


def title(page):
    return page.get_by_role("heading", level=1)


def password_shown_since(portal, since: int, secret: str) -> list[str]:
    return [f"{s} {u}" for u, s, body in portal.watch.bodies[since:] if secret in body]


# --- The staff member's journey ----------------------------------------------------------------


def test_staff_find_their_trunk_suspend_enable_and_change_its_password_and_caller_id(
    upstream, open_portal, alice, carol, mallory
):
    mine = trunk_made(by=alice, tenant=upstream.tenant, description="Front desk")
    theirs = trunk_made(
        by=carol, tenant=upstream.tenant, description="Warehouse fax", caller_id=MELBOURNE
    )
    portal = open_portal()
    page = portal.page
    # The pages are the same whichever Crazytel answers: axe scans them once (the sandbox run);
    # the other run holds every page to the CSP and script-error watch. What Crazytel plays no
    # part in (the list's search and state filter read the portal's own records, Back after the
    # password, the manager's audit page) is walked once, in the sandbox run: the other run
    # proves what depends on the upstream, every change it receives and answers.
    sandbox = upstream.name == "sandbox"
    check = portal.check if sandbox else (lambda _name: portal.assert_clean())
    portal.login_as(alice)
    portal.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Trunks").click()
    portal.settled()
    expect(page).to_have_url(portal.url("/trunks/"))
    rows = page.locator("#trunk-results tbody tr")
    expect(rows).to_have_count(2)
    check("lifecycle-trunk-list")

    if sandbox:
        # Free text: a word of the description, then a caller ID typed as dialled.
        page.get_by_label("Search").fill("front")
        expect(page).to_have_url(re.compile(r"/trunks/\?q=front(&|$)"))
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(mine.username)
        expect(rows.first).to_contain_text("02 9876 5432")
        portal.settled()
        page.get_by_label("Search").fill("03 8765 4321")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(theirs.username)
        portal.settled()
        page.get_by_label("Search").fill("")
        expect(rows).to_have_count(2)
        portal.settled()
    page.get_by_role("link", name=mine.username).click()
    portal.settled()
    expect(page).to_have_url(portal.url(f"/trunks/{mine.username}/"))
    expect(title(page)).to_contain_text(f"Trunk {mine.username}")
    expect(title(page)).to_contain_text("enabled")
    check("lifecycle-trunk-page")

    # Suspend: the page asks for a confirmation first ("calls stop at once"); nothing is sent.
    expect(page.locator("#state")).to_contain_text("its calls stop at once")
    page.get_by_role("button", name="Suspend trunk").click()
    portal.settled()
    expect(page.locator("#state")).to_contain_text("Confirm the suspension")
    assert upstream.holds(mine.username)["enabled"] is True
    assert not upstream.patches()
    page.get_by_label("I understand: its calls stop at once").check()
    page.get_by_role("button", name="Suspend trunk").click()
    portal.settled()
    expect(outcome(page)).to_contain_text("Saved: Crazytel applied the change")
    expect(title(page)).to_contain_text("suspended")
    assert upstream.holds(mine.username)["enabled"] is False
    upstream.assert_last_patch(mine, {"enabled": False}, 1)
    check("lifecycle-suspended")

    # The list's state filter finds it among the suspended, and only there.
    page.get_by_role("link", name="← Trunks").click()
    portal.settled()
    if sandbox:
        page.get_by_label("State").select_option(label="Suspended")
        expect(page).to_have_url(re.compile(r"[?&]state=suspended(&|$)"))
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(mine.username)
        expect(rows.first).to_contain_text("suspended")
        portal.settled()
        page.get_by_label("State").select_option(label="Enabled")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(theirs.username)
        portal.goto("/trunks/?state=suspended")
    page.get_by_role("link", name=mine.username).click()
    portal.settled()

    # Enable again: no confirmation needed.
    page.get_by_role("button", name="Enable trunk").click()
    portal.settled()
    expect(outcome(page)).to_contain_text("Saved: Crazytel applied the change")
    expect(title(page)).to_contain_text("enabled")
    assert upstream.holds(mine.username)["enabled"] is True
    upstream.assert_last_patch(mine, {"enabled": True}, 2)

    # A new password: the same live checklist as the create form; shown once, no-store.
    field = page.get_by_label("New password", exact=True)
    field.fill("short")
    expect(page.locator("#password-checklist [data-rule='length']")).to_have_attribute(
        "data-met", "false"
    )
    field.fill(NEW_PASSWORD)
    for rule_id in ("length", "upper", "lower", "digit"):
        expect(page.locator(f"#password-checklist [data-rule='{rule_id}']")).to_have_attribute(
            "data-met", "true"
        )
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/password/")
    ) as answer:
        page.get_by_role("button", name="Change password").click()
    portal.settled()
    assert "no-store" in answer.value.headers["cache-control"]
    expect(page.locator("#trunk-password")).to_have_text(NEW_PASSWORD)
    expect(outcome(page)).to_contain_text("only time the password is shown")
    check("lifecycle-password-shown-once")
    shown_at = len(portal.watch.bodies)
    assert upstream.has_password(mine.username, NEW_PASSWORD)
    upstream.assert_last_patch(mine, {"password": NEW_PASSWORD}, 3)

    # Gone for good: the trunk's page again; Back to the answer finds nothing kept (no-store: the
    # browser would have to send the form again); the list.
    portal.goto(f"/trunks/{mine.username}/")
    expect(page.locator("#trunk-password")).to_have_count(0)
    expect(page.locator(".history-table")).to_contain_text("Password changed (never recorded)")
    if sandbox:
        with pytest.raises(PlaywrightError, match="ERR_CACHE_MISS"):
            page.go_back()
        expect(page).to_have_url(re.compile("^chrome-error://"))  # the browser's own error page
        assert NEW_PASSWORD not in page.content()
    portal.goto("/trunks/")
    expect(rows).to_have_count(2)
    assert not password_shown_since(portal, shown_at, NEW_PASSWORD)

    # A new caller ID from the verified numbers: only that is sent.
    portal.goto(f"/trunks/{mine.username}/")
    caller_id = page.get_by_label("Caller ID number")
    expect(caller_id).to_have_value(SYDNEY)
    caller_id.select_option(label="03 8765 4321")
    page.get_by_role("button", name="Save settings").click()
    portal.settled()
    expect(outcome(page)).to_contain_text("Saved: Crazytel applied the change")
    settings_table = page.locator(".settings-table")
    expect(settings_table.get_by_role("row", name=re.compile("^Caller ID number"))).to_contain_text(
        "03 8765 4321"
    )
    assert upstream.holds(mine.username)["caller_id_number"] == MELBOURNE
    upstream.assert_last_patch(mine, {"caller_id_number": MELBOURNE}, 4)
    check("lifecycle-caller-id-changed")

    # The history, newest first; the audit record of the password change (a manager's page)
    # says it changed and never what to.
    history = page.locator(".history-table tbody tr")
    expect(history).to_have_count(5)
    expect(history.nth(0)).to_contain_text("Trunk settings changed")
    expect(history.nth(4)).to_contain_text("Trunk created")
    assert not password_shown_since(portal, shown_at, NEW_PASSWORD)
    for stored in AuditRecord.objects.all():
        assert NEW_PASSWORD not in str(stored.data) + str(stored.response)
    if sandbox:
        record = AuditRecord.objects.get(kind=AuditKind.TRUNK_PASSWORD_CHANGED)
        manager = open_portal()
        manager.login_as(mallory)
        manager.goto(f"/audit/{record.pk}/")
        expect(manager.page.locator("main")).to_contain_text("Password changed")
        assert not password_shown_since(manager, 0, NEW_PASSWORD)


# --- The manager's audit log -------------------------------------------------------------------


def test_a_manager_reads_each_change_as_a_diff_and_filters_the_log_by_kind(
    portal, alice, mallory, alpha
):
    mine = trunk_made(by=alice, tenant=alpha, description="Front desk")
    # Alice's four changes, as her journey above makes them on the trunk's page.
    for wanted in (
        {"enabled": False},
        {"enabled": True},
        {"password": NEW_PASSWORD},
        {"caller_id_number": MELBOURNE},
    ):
        mine.refresh_from_db()
        result = trunk_change(
            actor=alice,
            trunk=mine,
            wanted=wanted,
            version=mine.version,
            submission_token=f"journey-{uuid.uuid4().hex}",
        )
        assert result.succeeded, result.message

    page = portal.page
    portal.login_as(mallory)
    portal.goto("/audit/")
    rows = page.locator(".audit-table tbody tr")
    expect(rows).to_have_count(5)
    portal.check("lifecycle-audit-log")

    kind = page.get_by_label("Kind")
    for value, label, diff in (
        ("trunk_suspended", "Trunk suspended", "enabled yes → no"),
        ("trunk_enabled", "Trunk enabled", "enabled no → yes"),
        ("trunk_password_changed", "Trunk password changed", None),
        ("trunk_updated", "Trunk settings changed", "02 9876 5432 → 03 8765 4321"),
    ):
        portal.settled()
        kind.select_option(value)
        expect(page).to_have_url(re.compile(rf"[?&]kind={value}(&|$)"))
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(label)
        expect(rows.first).to_contain_text(mine.username)
        if diff:
            expect(rows.first).to_contain_text(diff)
        else:
            expect(rows.first).not_to_contain_text("→")
    portal.check("lifecycle-audit-kind-filter")

    # Each record's page: the before → after of what changed; the password only as "changed".
    for kind_value, label, shown in (
        (AuditKind.TRUNK_SUSPENDED, "Enabled", "yes → no"),
        (AuditKind.TRUNK_ENABLED, "Enabled", "no → yes"),
        (AuditKind.TRUNK_UPDATED, "Caller ID number", "02 9876 5432 → 03 8765 4321"),
        (AuditKind.TRUNK_PASSWORD_CHANGED, "Password changed", "yes"),
    ):
        record = AuditRecord.objects.get(kind=kind_value)
        portal.goto(f"/audit/{record.pk}/")
        expect(page.locator(f"dt:text-is('{label}') + dd")).to_have_text(shown)
        expect(page.locator("main")).to_contain_text("StatusSucceeded")
    portal.check("lifecycle-audit-password-record")
    assert NEW_PASSWORD not in page.content()

    # The record links to the trunk's page, whose history links back to the records.
    page.get_by_role("link", name=mine.username).first.click()
    portal.settled()
    expect(page).to_have_url(portal.url(f"/trunks/{mine.username}/"))
    history = page.locator(".history-table tbody tr")
    expect(history).to_have_count(5)
    expect(history.nth(0)).to_contain_text("Caller ID number: 02 9876 5432 → 03 8765 4321")
    expect(history.nth(1)).to_contain_text("Password changed (never recorded)")
    expect(history.nth(2)).to_contain_text("Enabled: No → Yes")
    expect(history.nth(3)).to_contain_text("Enabled: Yes → No")
    assert not [u for u, _s, body in portal.watch.bodies if NEW_PASSWORD in body]


# --- Who may act --------------------------------------------------------------------------------

# A forged form: the owner's hidden fields, posted from another person's page.
FORGE = """([action, fields]) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = action;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}"""


def test_a_colleague_cannot_act_on_the_trunk_and_another_tenant_gets_404(
    open_portal, alice, carol, bob, alpha, bravo_alone
):
    mine = trunk_made(by=alice, tenant=alpha, description="Front desk")
    path = f"/trunks/{mine.username}/"

    colleague = open_portal()
    colleague.login_as(carol)
    colleague.goto(path)
    page = colleague.page
    expect(title(page)).to_contain_text(f"Trunk {mine.username}")
    expect(page.locator("main")).to_contain_text("You may see this trunk")
    for button in ("Suspend trunk", "Enable trunk", "Change password", "Save settings"):
        expect(page.get_by_role("button", name=button)).to_have_count(0)
    colleague.check("lifecycle-colleague-sees")

    # The owner's own form (its one-time token and version), posted from the colleague's page.
    owner = open_portal()
    owner.login_as(alice)
    owner.goto(path)
    state_form = owner.page.locator("#state form")
    fields = {
        name: state_form.locator(f"input[name='{name}']").get_attribute("value")
        for name in ("submission_token", "version", "enabled")
    }
    fields |= {
        "confirm": "on",
        "csrfmiddlewaretoken": page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute(
            "value"
        ),
    }
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/enabled/")
    ) as refused:
        page.evaluate(FORGE, [f"{path}enabled/", fields])
    colleague.settled()
    assert refused.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text(
        "Only the person who created this trunk, and its tenant's managers and admins, may change it."
    )
    expect(page.get_by_role("button", name="Suspend trunk")).to_have_count(0)
    assert SandboxTrunk.objects.get(username=mine.username).enabled is True
    assert not AuditRecord.objects.filter(kind=AuditKind.TRUNK_SUSPENDED).exists()
    # The owner's form is untouched by the refused forgery: it still suspends, once.
    owner.page.get_by_label("I understand: its calls stop at once").check()
    owner.page.get_by_role("button", name="Suspend trunk").click()
    owner.settled()
    expect(outcome(owner.page)).to_contain_text("Saved: Crazytel applied the change")

    outsider = open_portal()
    outsider.login_as(bob)
    assert outsider.goto(path).status == 404
    outsider.check("lifecycle-other-tenant-404")
    outsider.goto("/trunks/")
    expect(outsider.page.locator("main")).not_to_contain_text(mine.username)


# --- Every way Crazytel can fail a change -------------------------------------------------------

SUBMIT = {"settings": "Save settings", "password": "Change password", "suspend": "Suspend trunk"}


def _fill(page, action: str) -> None:
    """What the person changes on the trunk's page for a fault row's `action`."""
    if action == "settings":
        page.get_by_label("Caller ID number").select_option(label="03 8765 4321")
    elif action == "password":
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    else:
        page.get_by_label("I understand: its calls stop at once").check()


FIELD_LABELS = {"caller_id_number": "Caller ID number", "password": "New password"}


def test_each_crazytel_failure_shows_its_own_message_on_the_trunk_page(
    subtests, portal, alice, alpha, sandbox_alpha, live_server, settings
):
    """One browser for all nine; each case starts as its own test would (a well-behaved Crazytel,
    a fresh key, a fresh trunk) and is reported on its own, so one failure does not hide the others."""
    timeout = settings.CRAZYTEL_TIMEOUT
    scanned: set[tuple] = set()
    page = portal.page
    portal.login_as(alice)
    for fault in CHANGE_FAULTS:
        with subtests.test(fault=fault.id):
            # A fresh key: the shared rate limiter (database or Redis) keeps a 429's wait per key.
            sandbox_faults_clear(account=sandbox_alpha)
            sandbox_alpha.api_key = f"ctsbx_journey_{uuid.uuid4().hex}"
            sandbox_alpha.save(update_fields=["api_key"])
            tenant_connect(alpha, base_url=sandbox_url(live_server), api_key=sandbox_alpha.api_key)
            cache.clear()  # the numbers cached for the tenant
            settings.CRAZYTEL_TIMEOUT = timeout
            trunk = trunk_made(by=alice, tenant=alpha, description=f"Fault {fault.id}")
            portal.goto(f"/trunks/{trunk.username}/")
            _fill(page, fault.action)
            if fault.sandbox is CLOSED_PORT:
                alpha.base_url = closed_port_url()
                alpha.save(update_fields=["base_url"])
            else:
                sandbox_faults_set(
                    account=sandbox_alpha, fault_scope="create", fault_remaining=1, **fault.sandbox
                )
            if fault.sandbox.get("create_then_timeout"):
                settings.CRAZYTEL_TIMEOUT = READ_TIMEOUT  # the sandbox answers after it
            posted = f"/trunks/{trunk.username}/"
            with page.expect_response(
                lambda r, posted=posted: r.request.method == "POST" and posted in r.url
            ) as answer:
                page.get_by_role("button", name=SUBMIT[fault.action]).click()
            portal.settled()
            assert answer.value.status == 200, answer.value.status

            panel = outcome(page)
            expect(panel).to_have_attribute("role", "alert")
            expect(panel.get_by_role("heading")).to_have_text(fault.heading)
            expect(panel).to_contain_text(fault.message)
            if fault.field:
                expect(page.get_by_label(FIELD_LABELS[fault.field], exact=True)).to_have_attribute(
                    "aria-invalid", "true"
                )
            if fault.status == AuditStatus.UNKNOWN:
                expect(title(page)).to_contain_text("unconfirmed change")
                expect(page.get_by_role("button", name="Send again")).to_be_visible()
            if fault.id == "404":
                expect(title(page)).to_contain_text("missing upstream")
            # axe scans each look of the outcome once (a scan costs a second or two); every page
            # is held to the CSP and script-error watch.
            look = (fault.heading, fault.field)
            if look in scanned:
                portal.assert_clean()
            else:
                scanned.add(look)
                portal.check(f"lifecycle-error-{fault.id}")
            assert NEW_PASSWORD not in page.content()

            record = AuditRecord.objects.exclude(kind=AuditKind.TRUNK_CREATE).get(
                trunk_username=trunk.username
            )
            assert (record.status, record.upstream_status) == (
                fault.status,
                fault.upstream_status,
            )
            history = page.locator(".history-table tbody tr").first
            expect(history).to_contain_text(record.get_status_display().lower())
