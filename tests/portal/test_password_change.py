"""People's own passwords (issue 15.1): the change page for everyone, and a password someone else
chose (an admin, a command) replaced at the next login before anything else."""

from django.contrib.auth import HASH_SESSION_KEY
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.password_change import SESSION_KEY
from tests.factories import DEFAULT_PASSWORD
from trunks.models import AuditKind, AuditRecord, PasswordChangeRequired
from trunks.tenants import members
from trunks.tenants.accounts import password_change_require

CHANGE = "/accounts/password_change/"
NEW_PASSWORD = "my-own-long-passphrase-42"
HTMX = {"HX-Request": "true"}


def _change(client, old, new=NEW_PASSWORD):
    return client.post(CHANGE, {"old_password": old, "new_password1": new, "new_password2": new})


def test_everyone_can_change_their_password_from_the_header(client, alice):
    client.force_login(alice)
    page = client.get("/trunks/new/").content.decode()
    assert f'href="{CHANGE}"' in page
    assert client.get(CHANGE).status_code == 200
    response = _change(client, DEFAULT_PASSWORD)
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    # Django keeps this session signed in after the change.
    assert client.get("/trunks/new/").status_code == 200


def test_a_wrong_current_password_changes_nothing(client, alice):
    client.force_login(alice)
    response = _change(client, "not-my-password")
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(DEFAULT_PASSWORD)


def test_a_user_created_by_an_admin_reaches_no_page_but_set_your_password(client, adam, tenant_a):
    added = members.member_add(
        actor=adam, tenant=tenant_a, username="newbie", role="staff", create_user=True
    )
    client.force_login(added.membership.user)
    for path in ("/", "/trunks/new/", "/audit/", "/tenants/", "/invitations/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == CHANGE, path
    # A POST elsewhere is refused the same way, and htmx gets a whole-page redirect.
    assert client.post("/trunks/new/", {})["Location"] == CHANGE
    response = client.get("/trunks/new/numbers/", headers=HTMX)
    assert response["HX-Redirect"] == CHANGE
    page = client.get(CHANGE).content.decode()
    assert "Set your password" in page and "Someone else chose your current password" in page
    assert _change(client, added.password).status_code == 302
    assert not PasswordChangeRequired.objects.filter(user=added.membership.user).exists()
    assert client.get("/trunks/new/").status_code == 200


def test_the_forced_change_cannot_keep_the_chosen_password(client, adam, tenant_a):
    added = members.member_add(
        actor=adam, tenant=tenant_a, username="newbie", role="staff", create_user=True
    )
    client.force_login(added.membership.user)
    client.post(CHANGE, {"old_password": "wrong", "new_password1": "x", "new_password2": "x"})
    assert client.get("/trunks/new/")["Location"] == CHANGE


def test_the_forced_change_still_lets_a_person_log_out(client, adam, tenant_a):
    added = members.member_add(
        actor=adam, tenant=tenant_a, username="newbie", role="staff", create_user=True
    )
    client.force_login(added.membership.user)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] != CHANGE


def test_a_password_set_for_someone_from_the_command_line_must_be_replaced(tenant_a, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("an-operator-chosen-pass-77\n"))
    call_command(
        "member_add", "alpha", "zoe", "--role", "staff", "--password-stdin", stdout=io.StringIO()
    )
    assert PasswordChangeRequired.objects.filter(user__username="zoe").exists()


def test_the_demo_users_are_not_forced_to_change_their_printed_passwords(db):
    import io

    call_command("demo_seed", stdout=io.StringIO())
    assert not PasswordChangeRequired.objects.exists()


# --- The flag kept in the session (issue 17: no query on every page) -----------------------------


def test_pages_read_the_forced_change_from_the_session_not_the_database(client, alice):
    client.force_login(alice)
    assert client.get("/trunks/new/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/trunks/new/").status_code == 200
    assert not [q for q in queries if "passwordchangerequired" in q["sql"]]


def _log_in(browser, username, password):
    return browser.post("/accounts/login/", {"username": username, "password": password})


def test_an_admins_reset_of_a_signed_in_members_password_forces_the_change_on_their_next_page(
    client, adam, alice, tenant_a
):
    alice_browser = client.__class__()
    assert _log_in(alice_browser, "alice", DEFAULT_PASSWORD).status_code == 302
    assert alice_browser.get("/trunks/new/").status_code == 200  # noted: no change needed
    client.force_login(adam)
    reset = client.post(_reset_url(tenant_a, alice.memberships.get(tenant=tenant_a)))
    html = reset.content.decode()
    password = html.split('<code id="new-password">')[1].split("</code>")[0]
    # Her next page: the session that knew the old password is over (Django's session hash)...
    response = alice_browser.get("/trunks/new/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # ...and signing in with the password the admin chose leads only to setting her own.
    assert _log_in(alice_browser, "alice", password).status_code == 302
    assert alice_browser.get("/trunks/new/")["Location"] == CHANGE
    assert _change(alice_browser, password).status_code == 302
    assert alice_browser.get("/trunks/new/").status_code == 200


def test_a_session_kept_through_a_change_of_its_password_hash_reads_the_flag_again(client, alice):
    client.force_login(alice)
    assert client.get("/trunks/new/").status_code == 200
    # A password set for her by someone else, in a way that keeps this session signed in (as
    # Django's update_session_auth_hash does): the flag noted beside the old hash no longer holds.
    alice.set_password("chosen-by-someone-else-77")
    alice.save()
    password_change_require(user=alice)
    session = client.session
    session[HASH_SESSION_KEY] = alice.get_session_auth_hash()
    session.save()
    assert client.get("/trunks/new/")["Location"] == CHANGE


def test_a_session_from_before_the_flag_was_kept_there_reads_it_once(client, alice):
    client.force_login(alice)
    session = client.session
    del session[SESSION_KEY]
    session.save()
    PasswordChangeRequired.objects.create(user=alice)
    assert client.get("/trunks/new/")["Location"] == CHANGE
    assert client.session[SESSION_KEY][1] is True


# --- A tenant admin resets a member's password ---------------------------------------------------


def _reset_url(tenant, membership):
    return f"/tenants/{tenant.slug}/members/{membership.pk}/password/"


def test_an_admin_resets_a_members_password_shown_once_and_forced_to_change(
    client, adam, alice, tenant_a
):
    membership = alice.memberships.get(tenant=tenant_a)
    client.force_login(adam)
    assert "Reset the password" in client.get(_reset_url(tenant_a, membership)).content.decode()
    response = client.post(_reset_url(tenant_a, membership))
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    password = html.split('<code id="new-password">')[1].split("</code>")[0]
    alice.refresh_from_db()
    assert alice.check_password(password) and not alice.check_password(DEFAULT_PASSWORD)
    assert PasswordChangeRequired.objects.filter(user=alice).exists()
    event = AuditRecord.objects.get(kind=AuditKind.MEMBER_PASSWORD_RESET)
    assert event.data == {"username": "alice"} and event.actor == adam
    assert password not in str(event.data)


def test_a_tenant_admin_cannot_reset_the_password_of_someone_in_a_tenant_they_do_not_administer(
    client, adam, alice, tenant_a, tenant_b
):
    alice.memberships.create(tenant=tenant_b, role="staff")
    client.force_login(adam)
    html = client.post(
        _reset_url(tenant_a, alice.memberships.get(tenant=tenant_a))
    ).content.decode()
    assert "also belongs to a tenant you do not administer" in html
    alice.refresh_from_db()
    assert alice.check_password(DEFAULT_PASSWORD)


def test_a_tenant_admin_cannot_reset_a_portal_administrators_password(client, adam, root, tenant_a):
    membership = root.memberships.create(tenant=tenant_a, role="staff")
    client.force_login(adam)
    html = client.post(_reset_url(tenant_a, membership)).content.decode()
    assert "Only portal administrators" in html
    root.refresh_from_db()
    assert root.check_password(DEFAULT_PASSWORD)


def test_another_tenants_admin_gets_404_for_the_reset(client, bob, alice, tenant_a, tenant_b):
    bob.memberships.filter(tenant=tenant_b).update(role="admin")
    client.force_login(bob)
    assert (
        client.post(_reset_url(tenant_a, alice.memberships.get(tenant=tenant_a))).status_code == 404
    )


# --- Unlocking a member the login throttle locked out ---------------------------------------------


def test_an_admin_unlocks_a_locked_out_member(client, adam, alice, tenant_a, settings, password):
    login = client.__class__()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert (
        login.post("/accounts/login/", {"username": "alice", "password": password}).status_code
        == 429
    )
    client.force_login(adam)
    page = client.get("/tenants/alpha/").content.decode()
    assert "locked out" in page
    membership = alice.memberships.get(tenant=tenant_a)
    client.post(f"/tenants/alpha/members/{membership.pk}/unlock/")
    assert (
        login.post("/accounts/login/", {"username": "alice", "password": password}).status_code
        == 302
    )
    event = AuditRecord.objects.get(kind=AuditKind.MEMBER_UNLOCKED)
    assert event.data["username"] == "alice" and event.actor == adam


def test_the_members_table_shows_name_email_and_last_login(client, adam, alice, tenant_a):
    alice.first_name, alice.last_name, alice.email = "Alice", "Anders", "alice@example.com"
    alice.save()
    client.force_login(adam)  # sets adam's last_login
    html = client.get("/tenants/alpha/").content.decode()
    assert "Alice Anders" in html and "alice@example.com" in html
    assert "Last log-in" in html and "never" in html  # alice never signed in


def test_the_created_users_page_says_they_must_replace_the_password(client, adam, tenant_a):
    client.force_login(adam)
    html = client.post(
        "/tenants/alpha/members/", {"username": "newbie", "role": "staff", "create_user": "on"}
    ).content.decode()
    assert "must replace it with their own" in html


def _admin_set_password(client, user, password=NEW_PASSWORD):
    return client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": password, "password2": password, "usable_password": "true"},
    )


def test_a_password_set_in_django_admin_for_someone_else_must_be_replaced(client, root, alice):
    client.force_login(root)
    response = _admin_set_password(client, alice)
    assert response.status_code == 302, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert PasswordChangeRequired.objects.filter(user=alice).exists()


def test_a_superuser_setting_their_own_password_in_django_admin_is_not_forced(client, root):
    client.force_login(root)
    assert _admin_set_password(client, root).status_code == 302
    assert not PasswordChangeRequired.objects.filter(user=root).exists()


def test_a_refused_password_in_django_admin_forces_nothing(client, root, alice):
    client.force_login(root)
    response = client.post(
        f"/admin/auth/user/{alice.pk}/password/", {"password1": "a", "password2": "b"}
    )
    assert response.status_code == 200
    assert not PasswordChangeRequired.objects.filter(user=alice).exists()


def test_a_user_added_in_django_admin_with_a_password_must_replace_it(client, root):
    client.force_login(root)
    response = client.post(
        "/admin/auth/user/add/",
        {"username": "carol", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
         "usable_password": "true"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert PasswordChangeRequired.objects.filter(user__username="carol").exists()
