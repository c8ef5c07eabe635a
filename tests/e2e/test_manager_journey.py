"""The manager's journey in Chromium: the audit log lists the staff's attempts, filters by status and
date range (state in the URL), opens a record, exports exactly the filtered rows as CSV; and a manager
of another tenant sees none of it."""

import csv
import io
import re
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import MembershipFactory, UserFactory
from trunks.models import AuditRecord, AuditStatus, Role
from trunks.provisioning.services import trunk_create
from trunks.sandbox.services import sandbox_faults_clear, sandbox_faults_set

PASSWORD = "Canary7PasswordQz"
# National format, as the rest of the portal writes it.
NATIONAL_02 = re.compile(r"\(?02\)? 9876 5432")
NATIONAL_03 = re.compile(r"\(?03\)? 8765 4321")


def _attempt(*, actor, tenant, description, caller="61298765432", days_ago=0, fault=None):
    """One real attempt through the service, over HTTP to the sandbox, `days_ago` days back."""
    from trunks.sandbox.models import SandboxAccount

    account = SandboxAccount.objects.get(api_key__in=_keys(tenant))
    if fault:
        sandbox_faults_set(account=account, **fault)
    when = timezone.now() - timedelta(days=days_ago)
    data = {
        "caller_id_number": caller,
        "sms_sender": "",
        "password": PASSWORD,
        "description": description,
        "area_code": "",
        "enabled": True,
        "hide_caller_id": False,
        "softphone_show_balance": True,
        "softphone_sync_sms": False,
    }
    # Time travel for records made "last week": every clock read (the audit record's times, the
    # sandbox's) says that day; the calls themselves are real.
    real_now = timezone.now
    offset = real_now() - when
    with mock.patch("django.utils.timezone.now", lambda: real_now() - offset):
        result = trunk_create(
            actor=actor,
            tenant=tenant,
            data=data,
            request=None,
            submission_token=uuid.uuid4().hex,
        )
    if fault:
        sandbox_faults_clear(account=account)
    return result.record


def _keys(tenant):
    from trunks.tenants.credentials import api_key_decrypt

    return [api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext)]


@pytest.fixture
def brenda(tenant_b):
    """Manager in tenant B: reads B's audit log, never anything of tenant A."""
    return MembershipFactory(
        user=UserFactory(username="brenda"), tenant=tenant_b, role=Role.MANAGER
    ).user


@pytest.fixture
def history(alpha, bravo_alone, alice, bob):
    """What the staff of both tenants did over the last fortnight."""
    sally = MembershipFactory(
        user=UserFactory(username="sally"), tenant=alpha, role=Role.STAFF
    ).user
    records = {
        "old": _attempt(actor=alice, tenant=alpha, description="Old reception", days_ago=10),
        "failed": _attempt(
            actor=alice,
            tenant=alpha,
            description="Warehouse phone",
            days_ago=3,
            fault={"forced_status": 422},
        ),
        "sally": _attempt(actor=sally, tenant=alpha, description="Sally desk", days_ago=3),
        "today": _attempt(actor=alice, tenant=alpha, description="Reception phone"),
        "unknown": _attempt(
            actor=alice,
            tenant=alpha,
            description="Lobby phone",
            caller="61387654321",
            fault={"forced_status": 500},
        ),
        "bravo": _attempt(
            actor=bob, tenant=bravo_alone, description="Bravo secret trunk", caller="61755501234"
        ),
    }
    statuses = {name: r.status for name, r in records.items()}
    assert statuses == {
        "old": AuditStatus.SUCCEEDED,
        "failed": AuditStatus.FAILED,
        "sally": AuditStatus.SUCCEEDED,
        "today": AuditStatus.SUCCEEDED,
        "unknown": AuditStatus.UNKNOWN,
        "bravo": AuditStatus.SUCCEEDED,
    }
    return records


def descriptions(page) -> list[str]:
    rows = page.locator(".audit-table tbody tr")
    return [d.strip() for d in rows.locator("td:nth-child(9)").all_inner_texts()]


def expect_descriptions(page, expected: list[str]) -> None:
    expect(page.locator(".audit-table tbody tr td:nth-child(9)")).to_have_text(expected)


def test_a_manager_reviews_filters_opens_and_exports_the_staffs_attempts(
    open_portal, history, mallory, brenda
):
    manager = open_portal()
    page = manager.page
    manager.login_as(mallory)  # signing in through the form is test_login.py's
    manager.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()

    # Newest first; every one of Alpha's trunk attempts, none of Bravo's.
    expect_descriptions(
        page,
        ["Lobby phone", "Reception phone", "Sally desk", "Warehouse phone", "Old reception"],
    )
    assert "Bravo" not in page.content()
    expect(page.locator(".audit-table")).to_contain_text("alice")
    manager.check("audit-list")

    # Alice's failed attempts: filters apply as they change, and the URL keeps them.
    filters = page.get_by_role("search", name="Filter the audit log")
    filters.get_by_label("Who", exact=True).select_option(label="alice")
    expect_descriptions(
        page, ["Lobby phone", "Reception phone", "Warehouse phone", "Old reception"]
    )
    filters.get_by_label("Status", exact=True).select_option(label="Failed")
    expect_descriptions(page, ["Warehouse phone"])
    expect(page).to_have_url(re.compile(r"\?(?=.*status=failed)(?=.*actor=\d+)"))
    expect(page.locator(".audit-table")).to_contain_text("Failed")

    # The last week, any status.
    today = timezone.localdate()
    filters.get_by_label("Status", exact=True).select_option(label="Any status")
    manager.settled()  # each change swaps the list: the next one goes to the settled form
    filters.get_by_label("From", exact=True).fill((today - timedelta(days=7)).isoformat())
    manager.settled()
    filters.get_by_label("To", exact=True).fill(today.isoformat())
    expect_descriptions(page, ["Lobby phone", "Reception phone", "Warehouse phone"])
    expect(page).to_have_url(re.compile(f"date_from={today - timedelta(days=7)}"))
    manager.check("audit-filtered")

    # The state is in the URL: a reload (or a shared link) shows the same rows.
    filtered_url = page.url
    page.reload()
    expect_descriptions(page, ["Lobby phone", "Reception phone", "Warehouse phone"])

    # A date range that ends before anything happened shows nothing, and says so.
    manager.settled()
    filters.get_by_label("To", exact=True).fill((today - timedelta(days=20)).isoformat())
    manager.settled()
    filters.get_by_label("From", exact=True).fill((today - timedelta(days=25)).isoformat())
    expect(page.get_by_text("No records match these filters.")).to_be_visible()
    manager.check("audit-empty")
    page.goto(filtered_url)

    # --- One record, everything recorded (numbers in national format, never the password) ------
    unknown = history["unknown"]
    # Numbered by its place in its tenant's log, not by the database id.
    page.get_by_role("link", name=f"#{unknown.chain_seq}", exact=True).click()
    expect(
        page.get_by_role("heading", name=f"{unknown.tenant_name} #{unknown.chain_seq}")
    ).to_be_visible()
    details = page.locator("main")
    expect(details).to_contain_text("Lobby phone")
    expect(details).to_contain_text(NATIONAL_03)
    expect(details).to_contain_text("alice")
    expect(details).to_contain_text("The outcome of this attempt is unknown")
    expect(details).to_contain_text("500")
    assert PASSWORD not in page.content()
    manager.check("audit-detail")

    # --- Export exactly the filtered rows ------------------------------------------------------------
    page.goto(filtered_url)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    content = open(download.path(), encoding="utf-8-sig").read()  # noqa: SIM115
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [r["Description"] for r in rows] == [
        "Lobby phone",
        "Reception phone",
        "Warehouse phone",
    ]
    assert {r["Who"] for r in rows} == {"alice"}
    assert {r["Tenant"] for r in rows} == {"Alpha Telecom"}
    by_description = {r["Description"]: r for r in rows}
    assert by_description["Reception phone"]["Trunk username"] == history["today"].trunk_username
    assert NATIONAL_02.fullmatch(by_description["Reception phone"]["Caller ID"])
    assert by_description["Warehouse phone"]["Status"].lower() == "failed"
    assert PASSWORD not in content and "Bravo" not in content

    # --- A manager of another tenant sees none of it -----------------------------------------------
    other = open_portal()
    other.login_as(brenda)
    other.goto("/audit/")
    expect_descriptions(other.page, ["Bravo secret trunk"])
    for record in history.values():
        if record.tenant_id != history["bravo"].tenant_id:
            assert record.description not in other.page.content()
    other.check()
    with other.page.expect_download() as download_info:
        other.page.get_by_role("link", name="CSV", exact=True).click()
    exported = open(download_info.value.path(), encoding="utf-8-sig").read()  # noqa: SIM115
    assert "Bravo secret trunk" in exported
    assert "Alpha" not in exported and "alice" not in exported
    response = other.goto(f"/audit/{unknown.pk}/")
    assert response.status == 404
    assert "Lobby phone" not in other.page.content()
    # Filters cannot reach across either: asking for alice's records finds nothing.
    other.goto(f"/audit/?actor={history['today'].actor_id}&tenant={history['today'].tenant_id}")
    assert "Reception phone" not in other.page.content()
    assert AuditRecord.objects.filter(description="Reception phone").exists()


def test_the_audit_log_writes_numbers_as_the_rest_of_the_portal_does(portal, alpha, alice, mallory):
    record = _attempt(actor=alice, tenant=alpha, description="Lobby phone", caller="61387654321")
    portal.login_as(mallory)
    portal.goto("/audit/")
    expect(portal.page.locator(".audit-table")).to_contain_text("Lobby phone")
    portal.goto(f"/audit/{record.pk}/")
    expect(portal.page.locator("main")).to_contain_text("03 8765 4321")
    assert "(03)" not in portal.page.content()
