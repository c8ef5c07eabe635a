"""The staff member's journey in Chromium, against the portal's own Crazytel sandbox over real HTTP.

Pick the tenant, see the verified numbers in national format, watch the password checklist tick,
generate a password, create the trunk, see its username and password once; then every way Crazytel
can fail, a double click, and the whole thing again without JavaScript.
"""

import re
import threading
import uuid

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from tests.provisioning.faults import BY_ID, READ_TIMEOUT
from trunks.models import AuditKind, AuditRecord, AuditStatus
from trunks.sandbox import views as sandbox_views
from trunks.sandbox.models import SandboxTrunk
from trunks.sandbox.services import sandbox_faults_clear, sandbox_faults_set

from .browser import page_settled, until
from .journeys import closed_port_url, sandbox_url, tenant_connect

USERNAME = re.compile(r"CT\d{6}")


def trunk_attempts():
    return AuditRecord.objects.filter(kind=AuditKind.TRUNK_CREATE)


def caller_id_options(page) -> list[str]:
    return [
        t.strip() for t in page.get_by_label("Caller ID number").locator("option").all_inner_texts()
    ]


def sms_sender_options(page) -> list[str]:
    return [t.strip() for t in page.get_by_label("SMS sender").locator("option").all_inner_texts()]


def rule(page, rule_id: str):
    return page.locator(f"#password-checklist [data-rule='{rule_id}']")


def fill_valid_form(page, *, password: str = "Reception2024ok") -> None:
    page_settled(page)  # the numbers are in, no swap pending: typing lands in the field that stays
    page.get_by_label("Caller ID number").select_option(label="02 9876 5432 — Sydney office")
    page.get_by_label("Trunk password").fill(password)
    page.get_by_label("Description").fill("Reception phone")


def submit(page) -> None:
    """Submit, and wait as a person does until the answer has settled on the page."""
    page.get_by_role("button", name="Create trunk").click()
    page_settled(page)


def outcome(page):
    """The panel that says what happened to a submission that did not create a trunk."""
    return page.locator("#trunk-create .outcome")


# --- The main journey ------------------------------------------------------------------------------


def test_staff_picks_a_tenant_checks_the_password_and_creates_a_trunk_seen_once(
    portal, alice, alpha, bravo
):
    page = portal.page
    portal.login_as(alice)  # signing in through the form is test_login.py's
    portal.goto("/")
    # A staff member lands on their home page, which offers the trunk form.
    expect(page.get_by_role("heading", name="Welcome, alice")).to_be_visible()
    page.get_by_role("region", name="Create a trunk").get_by_role("link").click()
    portal.settled()
    expect(page).to_have_url(portal.url("/trunks/new/"))
    expect(page.get_by_role("heading", name="New SIP trunk")).to_be_visible()

    # Two tenants: the form asks which (none is picked for the person); no "Switch tenant" button
    # with JavaScript on. Choosing one loads its form; its numbers fill both selects, in
    # national format with Crazytel's labels, and only 614 mobiles can be the SMS sender.
    picker = page.get_by_label("Tenant", exact=True)
    expect(picker.locator("option:checked")).to_have_text("Choose a tenant…")
    expect(page.get_by_role("heading", name="Which tenant is this trunk for?")).to_be_visible()
    expect(page.get_by_role("button", name="Switch tenant")).to_be_hidden()
    portal.check("trunk-form-choose-tenant")
    picker.select_option(label="Alpha Telecom")
    page_settled(page)
    expect(page.locator("#trunk-submit")).to_contain_text("on Alpha Telecom")
    # The checklist's character rule is not met by an empty field.
    expect(rule(page, "charset")).to_have_attribute("data-met", "false")
    assert caller_id_options(page) == [
        "Choose a number…",
        "02 9876 5432 — Sydney office",
        "03 8765 4321",
        "0412 345 678 — Ops mobile",
        "0487 654 321",
    ]
    assert sms_sender_options(page) == ["None", "0412 345 678 — Ops mobile", "0487 654 321"]
    portal.check("trunk-form-empty")

    # Switching tenant reloads both selects with that tenant's numbers (an htmx partial).
    picker.select_option(label="Bravo Networks")
    page_settled(page)
    expect(page.get_by_label("Caller ID number").locator("option")).to_have_count(3)
    assert caller_id_options(page) == [
        "Choose a number…",
        "07 5550 1234 — Brisbane desk",
        "0400 111 222 — Bravo mobile",
    ]
    assert sms_sender_options(page) == ["None", "0400 111 222 — Bravo mobile"]
    portal.check("trunk-form-other-tenant")
    picker.select_option(label="Alpha Telecom")
    page_settled(page)
    expect(page.get_by_label("Caller ID number").locator("option")).to_have_count(5)

    # The checklist ticks itself as the person types, rule by rule.
    field = page.get_by_label("Trunk password")
    for rule_id in ("length", "upper", "lower", "digit"):
        expect(rule(page, rule_id)).to_have_attribute("data-met", "false")
    field.press_sequentially("abc")
    expect(rule(page, "lower")).to_have_attribute("data-met", "true")
    expect(rule(page, "upper")).to_have_attribute("data-met", "false")
    field.press_sequentially("DE")
    expect(rule(page, "upper")).to_have_attribute("data-met", "true")
    expect(rule(page, "digit")).to_have_attribute("data-met", "false")
    expect(rule(page, "length")).to_have_attribute("data-met", "false")
    field.press_sequentially("12")
    expect(rule(page, "digit")).to_have_attribute("data-met", "true")
    expect(rule(page, "length")).to_have_attribute("data-met", "false")
    field.press_sequentially("3")
    expect(rule(page, "length")).to_have_attribute("data-met", "true")
    expect(rule(page, "length")).to_contain_text("met")
    field.press("Backspace")
    expect(rule(page, "length")).to_have_attribute("data-met", "false")
    # Filling (one input event, as a password manager does) ticks every rule at once.
    field.fill("Abcdefg1")
    for rule_id in ("length", "upper", "lower", "digit", "charset"):
        expect(rule(page, rule_id)).to_have_attribute("data-met", "true")

    # Show/hide: a toggle button that says whether it is pressed.
    toggle = page.locator("[data-password-toggle]")
    expect(field).to_have_attribute("type", "password")
    toggle.click()
    expect(field).to_have_attribute("type", "text")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    toggle.click()
    expect(field).to_have_attribute("type", "password")
    expect(toggle).to_have_attribute("aria-pressed", "false")

    # A submission the portal refuses never reaches Crazytel, and the errors sit by their fields.
    page.get_by_label("Caller ID number").select_option(label="02 9876 5432 — Sydney office")
    field.fill("weakpass")
    page.get_by_label("Description").fill("Reception phone")
    # "Sync SMS" cannot be ticked without an SMS sender (the server refuses it too).
    expect(page.get_by_label("Sync SMS in CrazyPhone")).to_be_disabled()
    submit(page)
    expect(page.get_by_role("alert")).to_contain_text("Nothing was sent to Crazytel")
    password_field = page.get_by_label("Trunk password")
    expect(password_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_password_error")).to_contain_text("upper-case letter")
    expect(page.locator("#id_password_error")).to_contain_text("digit")
    # Nothing typed is lost, but the password (a field error: the person sees why and retypes).
    expect(page.get_by_label("Description")).to_have_value("Reception phone")
    expect(page.get_by_label("Caller ID number")).to_have_value("61298765432")
    portal.check("trunk-form-errors")
    assert not trunk_attempts().exists()
    assert not SandboxTrunk.objects.exists()

    # Generate: a strong password that meets every rule, shown so it can be copied.
    page.get_by_role("button", name="Generate").click()
    password_field = page.get_by_label("Trunk password")
    expect(password_field).not_to_have_value("")
    generated = password_field.input_value()
    assert len(generated) >= 16
    assert re.search("[A-Z]", generated) and re.search("[a-z]", generated)
    assert re.search("[0-9]", generated) and re.fullmatch("[!-~]+", generated)
    for rule_id in ("length", "upper", "lower", "digit", "charset"):
        expect(rule(page, rule_id)).to_have_attribute("data-met", "true")
    # The server's complaint about the old password goes once the new one meets every rule.
    expect(page.locator("#id_password_error")).to_have_count(0)
    expect(password_field).not_to_have_attribute("aria-invalid", "true")
    expect(password_field).to_have_attribute("type", "text")
    page.get_by_role("button", name="Hide password").click()
    expect(password_field).to_have_attribute("type", "password")

    page.get_by_label("SMS sender").select_option(label="0412 345 678 — Ops mobile")
    page.get_by_label("Sync SMS in CrazyPhone").check()  # possible now there is a sender
    page.get_by_label("Area code").select_option(label="02 — NSW / ACT")
    submit(page)

    # Success: the CT username and the password, once; the settings as created.
    result = page.locator("#trunk-result")
    expect(result.locator("#result-title")).to_have_text(re.compile(r"Trunk CT\d{6} created"))
    username = page.locator("#trunk-username").inner_text().strip()
    assert USERNAME.fullmatch(username)
    expect(page.locator("#trunk-password")).to_have_text(generated)
    expect(result).to_contain_text("only time the password is shown")
    expect(result).to_contain_text("0412 345 678")
    portal.check("trunk-success")

    trunk = SandboxTrunk.objects.get()
    assert trunk.username == username
    assert trunk.check_password(generated)
    assert (trunk.caller_id_number, trunk.sms_sender, trunk.area_code) == (
        "61298765432",
        "61412345678",
        "02",
    )
    assert trunk.description == "Reception phone" and trunk.softphone_sync_sms
    record = trunk_attempts().get()
    assert (record.status, record.trunk_username, record.actor) == (
        AuditStatus.SUCCEEDED,
        username,
        alice,
    )

    # The password is gone for good: neither Back (no page cache, no htmx history) nor a reload
    # brings it back; the page offers a fresh form.
    shown_at = len(portal.watch.bodies)
    page.get_by_role("link", name="Crazytel trunk portal").click()  # home
    expect(page.get_by_role("heading", name="Welcome, alice")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="New SIP trunk")).to_be_visible()
    assert generated not in page.content()
    page.reload()
    expect(page.get_by_label("Trunk password")).to_have_value("")
    assert generated not in page.content()
    assert not any(generated in body for _url, _status, body in portal.watch.bodies[shown_at:])


def test_the_checklist_still_ticks_after_the_form_comes_back_with_errors(portal, alice, alpha):
    page = portal.page
    portal.login_as(alice)
    portal.goto("/trunks/new/")
    page.get_by_label("Caller ID number").select_option(label="02 9876 5432 — Sydney office")
    page.get_by_label("Trunk password").fill("weakpass")
    submit(page)  # waits for the swap to settle: typing before it raced the swap (issue 12)
    field = page.get_by_label("Trunk password")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_editable()
    expect(field).to_have_value("")  # the password is asked again
    field.press_sequentially("Abcdefg1")
    expect(field).to_have_value("Abcdefg1")
    for rule_id in ("length", "upper", "lower", "digit"):
        expect(rule(page, rule_id)).to_have_attribute("data-met", "true")


# --- Crazytel's failures, each shown on the form -----------------------------------------------------


def _reject_caller_id(account, tenant, settings):
    # The number was verified when the form loaded; Crazytel no longer lists it.
    account.verified_numbers = [n for n in account.verified_numbers if n["number"] != "61298765432"]
    account.save()


def _rotate_key(account, tenant, settings):
    # Someone replaced the key in Crazytel's portal: the tenant's stored key is now refused.
    account.api_key = account.api_key + "-rotated"
    account.save()


def _sandbox_fault(fault):
    def apply(account, tenant, settings):
        if fault.sandbox.get("create_then_timeout"):
            settings.CRAZYTEL_TIMEOUT = READ_TIMEOUT
        sandbox_faults_set(account=account, **fault.sandbox)

    return apply


# The faults of tests/provisioning/faults.py the journey shows (their message and audit status come
# from there): how the journey makes each happen, and the inline error beside the field it names.
FAILURES = {
    "422-password": (_sandbox_fault(BY_ID["422-password"]), "Crazytel refused this password"),
    "400-number": (_reject_caller_id, "not verified"),
    "401": (_rotate_key, None),
    "429": (_sandbox_fault(BY_ID["429"]), None),
    "500": (_sandbox_fault(BY_ID["500"]), None),
    "timeout-after-create": (_sandbox_fault(BY_ID["timeout-after-create"]), None),
}
FIELD_LABELS = {"password": "Trunk password", "caller_id_number": "Caller ID number"}


def test_each_crazytel_failure_shows_its_message_on_the_form(
    subtests, portal, alice, alpha, sandbox_alpha, live_server, settings
):
    """One browser for all six; each case starts as its own test would (a well-behaved Crazytel
    with a fresh key and all its numbers, nothing cached, the usual timeout, a fresh form) and is
    reported on its own, so one failure does not hide the others."""
    timeout = settings.CRAZYTEL_TIMEOUT
    numbers = list(sandbox_alpha.verified_numbers)
    scanned: set[tuple] = set()
    page = portal.page
    portal.login_as(alice)
    for case, (go_wrong, field_error) in FAILURES.items():
        with subtests.test(case=case):
            fault = BY_ID[case]
            message, audit_status = fault.message, fault.status
            # A fresh key: the shared rate limiter keeps a 429's wait per key (and 401 rotates it).
            sandbox_faults_clear(account=sandbox_alpha)
            sandbox_alpha.verified_numbers = numbers
            sandbox_alpha.api_key = f"ctsbx_journey_{uuid.uuid4().hex}"
            sandbox_alpha.save(update_fields=["verified_numbers", "api_key"])
            tenant_connect(alpha, base_url=sandbox_url(live_server), api_key=sandbox_alpha.api_key)
            cache.clear()  # the numbers cached for the tenant
            settings.CRAZYTEL_TIMEOUT = timeout
            earlier = list(trunk_attempts().values_list("pk", flat=True))
            upstream_before = SandboxTrunk.objects.count()

            portal.goto("/trunks/new/")
            fill_valid_form(page)
            go_wrong(sandbox_alpha, alpha, settings)
            submit(page)

            panel = outcome(page)
            expect(panel).to_contain_text(message)
            expect(panel).to_have_attribute("role", "alert")
            if fault.field:
                label = FIELD_LABELS[fault.field]
                expect(page.get_by_label(label)).to_have_attribute("aria-invalid", "true")
                expect(page.locator("#trunk-form")).to_contain_text(field_error)
            # What was typed is still there (the password is asked again only where the outcome
            # demands).
            expect(page.get_by_label("Description")).to_have_value("Reception phone")
            # axe scans each look of the outcome once (failed or unknown, the field named); every
            # page is held to the CSP and script-error watch.
            look = (audit_status, fault.field)
            if look in scanned:
                portal.assert_clean()
            else:
                scanned.add(look)
                portal.check(f"trunk-error-{case}")

            record = trunk_attempts().exclude(pk__in=earlier).get()
            assert record.status == audit_status
            assert "Reception2024ok" not in page.content()
            if audit_status == AuditStatus.UNKNOWN:
                # Trying again needs an explicit confirmation; the new attempt will point at this one.
                expect(page.get_by_role("button", name="Try again anyway")).to_be_visible()
                expect(
                    page.get_by_label(re.compile("I have checked the Crazytel account"))
                ).not_to_be_checked()
            # A timeout after the create: Crazytel did create it, exactly the situation "unknown"
            # warns about (the sandbox finishes its answer after the portal stopped waiting).
            wanted = upstream_before + fault.trunks
            until(
                page, lambda w=wanted: SandboxTrunk.objects.count() >= w, f"{fault.trunks} trunk(s)"
            )
            assert SandboxTrunk.objects.count() == wanted


def test_a_refused_sms_sender_is_marked_beside_its_field_and_the_password_is_asked_again(
    portal, alice, alpha, sandbox_alpha
):
    page = portal.page
    portal.login_as(alice)
    portal.goto("/trunks/new/")
    fill_valid_form(page)
    page.get_by_label("SMS sender").select_option(label="0412 345 678 — Ops mobile")
    # Verified when the form loaded; Crazytel no longer lists it when the trunk is created.
    sandbox_alpha.verified_numbers = [
        n for n in sandbox_alpha.verified_numbers if n["number"] != "61412345678"
    ]
    sandbox_alpha.save()
    submit(page)

    sms_sender = page.get_by_label("SMS sender")
    expect(page.locator("#id_sms_sender_error")).to_be_visible()
    expect(sms_sender).to_have_attribute("aria-invalid", "true")
    expect(sms_sender).to_have_attribute("aria-describedby", re.compile(r"\bid_sms_sender_error\b"))
    # The htmx swap kept the person on the form, and the password must be typed again.
    expect(page).to_have_url(portal.url("/trunks/new/"))
    expect(page.get_by_label("Trunk password")).to_have_value("")
    expect(page.get_by_label("Description")).to_have_value("Reception phone")
    portal.check("trunk-error-sms-sender")
    assert trunk_attempts().get().status == AuditStatus.FAILED
    assert not SandboxTrunk.objects.exists()


def test_an_unreachable_crazytel_is_said_where_the_numbers_would_be(
    portal, alice, alpha, live_server
):
    page = portal.page
    portal.login_as(alice)
    portal.goto("/trunks/new/")
    fill_valid_form(page)
    # Crazytel goes away (nothing listens at the tenant's base URL any more).
    alpha.base_url = closed_port_url()
    alpha.save()
    submit(page)
    expect(page.locator("#trunk-form")).to_contain_text(
        "Nothing was sent: the numbers could not be checked against Crazytel."
    )
    portal.check("trunk-error-unreachable")
    assert not trunk_attempts().exists()

    # A fresh visit says so where the selects would be, and cannot submit; Try again recovers.
    portal.goto("/trunks/new/")
    region = page.locator("#numbers-region")
    expect(region.get_by_role("alert")).to_contain_text("could not be loaded")
    expect(page.get_by_role("button", name="Create trunk")).to_be_disabled()
    portal.check("trunk-numbers-unreachable")
    alpha.base_url = sandbox_url(live_server)
    alpha.save()
    region.get_by_role("link", name="Try again").click()
    expect(page.get_by_label("Caller ID number").locator("option")).to_have_count(5)
    expect(page.get_by_role("button", name="Create trunk")).to_be_enabled()


# --- One trunk per form ----------------------------------------------------------------------------


@pytest.fixture
def held_creates(monkeypatch):
    """The sandbox holds every create it receives until the test sets this event: the first
    request is surely in flight while the second click lands (a latency would only make it likely,
    and cost its length every run). Let go at the end whatever happened, so no server thread hangs."""
    release = threading.Event()
    real = sandbox_views._parse_body

    def held(request):
        if request.method == "POST":
            release.wait(timeout=30)
        return real(request)

    monkeypatch.setattr(sandbox_views, "_parse_body", held)
    yield release
    release.set()


def test_a_double_click_on_submit_makes_one_upstream_call(portal, alice, alpha, held_creates):
    page = portal.page
    portal.login_as(alice)
    portal.goto("/trunks/new/")
    fill_valid_form(page)
    page.get_by_role("button", name="Create trunk").dblclick()
    held_creates.set()  # both clicks landed while the first request waited on Crazytel
    expect(page.locator("#result-title")).to_have_text(re.compile(r"Trunk CT\d{6} created"))
    assert SandboxTrunk.objects.count() == 1
    assert trunk_attempts().count() == 1


def test_without_javascript_the_form_still_creates_a_trunk(open_portal, alice, alpha):
    portal = open_portal(js=False)
    page = portal.page
    portal.login_as(alice)
    portal.goto("/trunks/new/")
    # No script: no checklist ticking, no Generate; the plain form is all there is, and enough.
    expect(page.get_by_role("button", name="Generate")).to_be_hidden()
    fill_valid_form(page)
    submit(page)
    expect(page.locator("#result-title")).to_have_text(re.compile(r"Trunk CT\d{6} created"))
    username = page.locator("#trunk-username").inner_text().strip()
    expect(page.locator("#trunk-password")).to_have_text("Reception2024ok")
    portal.check("trunk-success-no-js")
    assert SandboxTrunk.objects.get().username == username


def test_without_javascript_a_double_submit_still_makes_one_trunk(
    open_portal, alice, alpha, held_creates
):
    """No script disables the button here: the second POST of the same form reaches the server,
    which answers it with the first one's result instead of calling Crazytel again."""
    portal = open_portal(js=False)
    page = portal.page
    portal.login_as(alice)
    portal.goto("/trunks/new/")
    fill_valid_form(page)
    button = page.get_by_role("button", name="Create trunk")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Raw mouse clicks: Playwright's click() would wait for the first submission to finish. The
    # second click comes once the first POST is waiting on Crazytel (the sandbox holds it), and is
    # answered while it still waits; then Crazytel answers the first.
    page.mouse.click(x, y)
    until(
        page,
        lambda: trunk_attempts().filter(status=AuditStatus.PENDING).exists(),
        "the first submission to reach Crazytel",
    )
    with page.expect_response(lambda r: r.request.method == "POST"):
        page.mouse.click(x, y)
    held_creates.set()
    expect(page.locator("#trunk-result")).to_be_visible()
    expect(page.locator("#trunk-result")).to_contain_text(re.compile(r"already submitted|CT\d{6}"))
    # Wait for the first request to finish upstream, then count.
    until(
        page,
        lambda: not trunk_attempts().filter(status=AuditStatus.PENDING).exists(),
        "the first submission to finish",
    )
    assert trunk_attempts().count() == 1
    assert SandboxTrunk.objects.count() == 1
