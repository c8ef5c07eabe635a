"""The admin's journey in Chromium: create a tenant, set its key, test the connection (balance shown),
add a staff member, who then logs in, sets their own password and sees the trunk form; the key never shows again anywhere."""

from decimal import Decimal

from playwright.sync_api import expect

from trunks.models import AuditKind, AuditRecord, Membership, Role, Tenant
from trunks.sandbox.services import sandbox_account_ensure

from .journeys import sandbox_url


def test_an_admin_sets_up_a_tenant_that_its_new_staff_member_can_use(
    open_portal, live_server, root, password
):
    account = sandbox_account_ensure(name="Charlie Comms sandbox")
    account.balance = Decimal("2405.44")
    account.save()
    key = account.api_key

    admin = open_portal()
    page = admin.page
    admin.login_as(root)  # signing in through the form is test_login.py's; sam's is below
    admin.goto("/")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tenants").click()
    expect(page.get_by_role("heading", name="Tenants", exact=True)).to_be_visible()
    admin.check("tenants-empty")

    # --- Create the tenant ---------------------------------------------------------------------
    page.get_by_role("link", name="New tenant").click()
    expect(page.get_by_role("heading", name="New tenant")).to_be_visible()
    admin.check("tenant-form")
    page.get_by_label("Name", exact=True).fill("Charlie Comms")
    page.get_by_label("Short name").fill("charlie comms")  # not a slug: refused, nothing lost
    page.get_by_label("Crazytel base URL").fill(sandbox_url(live_server))
    page.get_by_role("button", name="Create tenant").click()
    slug_field = page.get_by_label("Short name")
    expect(slug_field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Charlie Comms")
    expect(page.get_by_label("Crazytel base URL")).to_have_value(sandbox_url(live_server))
    admin.check("tenant-form-errors")
    assert not Tenant.objects.filter(name="Charlie Comms").exists()

    admin.settled()
    slug_field.fill("charlie-comms")
    page.get_by_role("button", name="Create tenant").click()
    expect(page.get_by_role("heading", name="Charlie Comms", exact=True)).to_be_visible()
    expect(page.get_by_text("Tenant Charlie Comms created.")).to_be_visible()
    tenant = Tenant.objects.get(slug="charlie-comms")
    assert tenant.base_url == sandbox_url(live_server)
    # No key yet: the connection test waits for one.
    expect(page.get_by_role("button", name="Test connection")).to_be_disabled()
    admin.check("tenant-new")

    # --- Set the key (write-only; it asks for the admin's password again first) ------------------
    key_section = page.locator("#key")
    key_section.get_by_role("link", name="Confirm your password").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    admin.check("reauth")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Charlie Comms", exact=True)).to_be_visible()
    key_input = page.get_by_label("Crazytel API key")
    expect(key_input).to_have_attribute("type", "password")
    admin.settled()
    key_input.fill(key)
    page.get_by_role("button", name="Save key").click()
    expect(key_section.get_by_role("status")).to_contain_text(f"API key set: ••••{key[-4:]}")
    expect(page.get_by_label("Crazytel API key")).to_have_value("")
    saved_at = len(admin.watch.bodies)
    tenant.refresh_from_db()
    assert tenant.has_api_key and key not in tenant.api_key_ciphertext

    # --- Test the connection: the sandbox's account code and balance -----------------------------
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#connection-result")
    expect(result).to_contain_text("Connection works.")
    expect(result).to_contain_text(account.account_code)
    expect(result).to_contain_text("$2,405.44")
    admin.check("tenant-connection-ok")
    tenant.refresh_from_db()
    assert tenant.connection_ok is True

    # --- Add a staff member, created on the spot (their password shown once) ---------------------
    members = page.locator("#members")
    admin.settled()
    members.get_by_label("Username").fill("sam")
    members.get_by_label("Role").select_option(label="Staff")
    members.get_by_label("Create this user if they do not exist yet").check()
    members.get_by_role("button", name="Add member").click()
    expect(members.get_by_role("status")).to_contain_text("User sam created and added as Staff")
    sam_password = members.locator("#new-password").inner_text().strip()
    assert len(sam_password) >= 16
    expect(members.get_by_role("row", name="sam")).to_be_visible()
    admin.check("tenant-member-added")
    assert Membership.objects.filter(user__username="sam", tenant=tenant, role=Role.STAFF).exists()

    # --- The key is never shown again: pages, fragments, Django admin ----------------------------
    for path in (
        "/tenants/",
        f"/tenants/{tenant.slug}/",
        f"/tenants/{tenant.slug}/edit/",
        f"/admin/trunks/tenant/{tenant.pk}/change/",
        "/admin/trunks/tenant/",
        "/audit/",
    ):
        response = admin.goto(path)
        assert response.ok, f"{path}: {response.status}"
        assert key not in page.content(), f"the API key is in {path}"
        if path == "/tenants/":  # only its last four characters, to tell keys apart
            expect(page.get_by_role("row", name="Charlie Comms")).to_contain_text(f"••••{key[-4:]}")
        if not path.startswith("/admin/"):  # Django admin's own markup is not ours to scan
            admin.check("tenants" if path == "/tenants/" else None)
    leaks = [
        f"{status} {url}" for url, status, body in admin.watch.bodies[saved_at:] if key in body
    ]
    assert not leaks, f"the API key came back in: {leaks}"

    # Every step left its event in the audit log, and none holds the key.
    kinds = set(AuditRecord.objects.filter(tenant=tenant).values_list("kind", flat=True))
    assert kinds == {
        AuditKind.TENANT_CREATED,
        AuditKind.KEY_SET,
        AuditKind.CONNECTION_TESTED,
        AuditKind.MEMBER_ADDED,
    }
    for record in AuditRecord.objects.filter(tenant=tenant):
        assert key not in str(record.data) + record.error_message

    # --- The new staff member logs in with the password shown once, and can create trunks --------
    # The password the admin saw must be replaced first: no other page until it is.
    staff = open_portal()
    staff.login("sam", sam_password)
    expect(staff.page).to_have_url(staff.url("/accounts/password_change/"))
    expect(staff.page.get_by_role("heading", name="Set your password")).to_be_visible()
    staff.check("password-forced")
    staff.goto("/trunks/new/")
    expect(staff.page).to_have_url(staff.url("/accounts/password_change/"))
    staff.page.get_by_label("Old password").fill(sam_password)
    staff.page.get_by_label("New password", exact=True).fill("sams-own-long-passphrase-9")
    staff.page.get_by_label("New password confirmation").fill("sams-own-long-passphrase-9")
    staff.page.get_by_role("button", name="Set my password").click()
    # Then their home page offers the form.
    staff.page.get_by_role("region", name="Create a trunk").get_by_role("link").click()
    staff.settled()
    expect(staff.page).to_have_url(staff.url("/trunks/new/"))
    expect(staff.page.locator("main")).to_contain_text("Charlie Comms")
    caller_ids = staff.page.get_by_label("Caller ID number").locator("option")
    expect(caller_ids).not_to_have_count(0)
    staff.check()
