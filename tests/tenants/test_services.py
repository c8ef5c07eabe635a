"""Tenants and members services: authority, validation, audit, encryption at rest and rotation."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from trunks.errors import Conflict, InvalidInput, NotFound, NotPermitted
from trunks.models import AuditKind, AuditRecord, AuditStatus, Membership, Role, Tenant
from trunks.tenants import members, services
from trunks.tenants.credentials import CredentialError, api_key_decrypt

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

KEY = "live-key-0123456789abcd"


def _raw_ciphertext(tenant) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key_ciphertext FROM trunks_tenant WHERE id = %s", [tenant.pk])
        return cursor.fetchone()[0]


def _events(tenant, kind=None):
    records = AuditRecord.objects.filter(tenant=tenant).order_by("chain_seq")
    return records.filter(kind=kind) if kind else records


# --- Tenants --------------------------------------------------------------------------------------


def test_only_superusers_create_tenants(root, adam):
    with pytest.raises(NotPermitted):
        services.tenant_create(actor=adam, name="Zulu", slug="zulu")
    tenant = services.tenant_create(
        actor=root, name="  Zulu   Comms ", slug="Zulu", base_url="https://api.example.com/v1/"
    )
    assert (tenant.name, tenant.slug, tenant.base_url) == (
        "Zulu Comms",
        "zulu",
        "https://api.example.com/v1",
    )
    event = _events(tenant).get()
    assert event.kind == AuditKind.TENANT_CREATED
    assert event.actor == root and event.data["slug"] == "zulu"


@pytest.mark.parametrize(
    ("name", "slug", "base_url", "field"),
    [
        ("", "ok", "", "name"),
        ("Ok", "has space", "", "slug"),
        ("Ok", "new", "", "slug"),
        ("Ok", "ok", "ftp://example.com", "base_url"),
        ("Ok", "ok", "not a url", "base_url"),
        ("alpha telecom", "ok", "", "name"),
        ("Ok", "alpha", "", "slug"),
    ],
)
def test_tenant_create_refuses_bad_or_taken_values(root, tenant_a, name, slug, base_url, field):
    with pytest.raises((InvalidInput, Conflict)) as caught:
        services.tenant_create(actor=root, name=name, slug=slug, base_url=base_url)
    assert caught.value.field == field
    assert caught.value.message
    assert Tenant.objects.count() == 1


def test_tenant_admin_edits_own_tenant_but_not_its_base_url(adam, tenant_a, bob, root):
    tenant = services.tenant_update(actor=adam, tenant=tenant_a, name="Alpha Tel")
    assert tenant.name == "Alpha Tel"
    event = _events(tenant_a, AuditKind.TENANT_UPDATED).get()
    assert event.data["changes"] == {"name": ["Alpha Telecom", "Alpha Tel"]}
    # Pointing the tenant elsewhere would send its stored key there: portal admins only.
    with pytest.raises(NotPermitted):
        services.tenant_update(actor=adam, tenant=tenant_a, base_url="https://evil.example")
    with pytest.raises(NotPermitted):
        services.tenant_update(actor=bob, tenant=tenant_a, name="Hijacked")
    services.tenant_update(actor=root, tenant=tenant_a, base_url="https://other.example/api")
    tenant_a.refresh_from_db()
    assert tenant_a.base_url == "https://other.example/api"
    assert tenant_a.name == "Alpha Tel"


def test_an_update_that_changes_nothing_records_nothing(adam, tenant_a):
    services.tenant_update(actor=adam, tenant=tenant_a, name="Alpha Telecom", is_active=True)
    assert not _events(tenant_a).exists()


def test_deactivated_tenant_is_not_ready_for_trunks_and_says_why(adam, tenant_a, root):
    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=KEY)
    tenant_a.refresh_from_db()
    assert tenant_a.readiness.ready
    services.tenant_set_active(actor=adam, tenant=tenant_a, is_active=False)
    tenant_a.refresh_from_db()
    ready, reason = tenant_a.readiness.ready, tenant_a.readiness.reason
    assert not ready and "deactivated" in reason
    assert _events(tenant_a, AuditKind.TENANT_UPDATED).get().data["changes"] == {
        "is_active": [True, False]
    }


def test_tenant_without_key_is_not_ready_for_trunks(tenant_a):
    ready, reason = tenant_a.readiness.ready, tenant_a.readiness.reason
    assert not ready
    assert "no Crazytel API key" in reason


# --- Credentials ----------------------------------------------------------------------------------


def test_key_is_stored_encrypted_with_fingerprint_and_audited_without_the_key(adam, tenant_a):
    tenant = services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=f"  {KEY}\n")
    raw = _raw_ciphertext(tenant)
    assert raw and KEY not in raw
    assert api_key_decrypt(tenant_id=tenant.pk, ciphertext=raw) == KEY
    assert tenant.api_key_last4 == "abcd"
    assert tenant.api_key_masked == "••••abcd"
    assert tenant.api_key_set_by == adam and tenant.api_key_set_at
    event = _events(tenant_a).get()
    assert event.kind == AuditKind.KEY_SET
    assert KEY not in str(event.data) and raw not in str(event.data)


def test_replacing_a_key_is_recorded_as_replaced_and_resets_the_connection(adam, tenant_a):
    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=KEY)
    services.tenant_connection_mark_failed(tenant=tenant_a)
    tenant = services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key="second-key-9999")
    assert [e.kind for e in _events(tenant_a)] == [AuditKind.KEY_SET, AuditKind.KEY_REPLACED]
    tenant.refresh_from_db()
    assert tenant.api_key_last4 == "9999"
    assert tenant.connection_ok is None and tenant.connection_checked_at is None


@pytest.mark.parametrize(
    "bad", ["", "   ", "short", "has space inside", "x" * 300, "ключ-ключ-ключ"]
)
def test_it_refuses_a_key_that_cannot_be_a_crazytel_key(adam, tenant_a, bad):
    with pytest.raises(InvalidInput) as caught:
        services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=bad)
    assert caught.value.field == "api_key"
    tenant_a.refresh_from_db()
    assert not tenant_a.has_api_key
    assert not _events(tenant_a).exists()


def test_staff_and_managers_and_other_tenants_cannot_set_a_key(alice, mallory, bob, tenant_a):
    for actor in (alice, mallory, bob):
        with pytest.raises(NotPermitted):
            services.tenant_credential_set(actor=actor, tenant=tenant_a, api_key=KEY)
    tenant_a.refresh_from_db()
    assert not tenant_a.has_api_key


def test_a_ciphertext_copied_to_another_tenant_does_not_decrypt(adam, tenant_a, tenant_b):
    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=KEY)
    Tenant.objects.filter(pk=tenant_b.pk).update(api_key_ciphertext=_raw_ciphertext(tenant_a))
    with pytest.raises(CredentialError):
        api_key_decrypt(tenant_id=tenant_b.pk, ciphertext=_raw_ciphertext(tenant_b))


def test_a_key_is_decrypted_once_per_process_and_a_failure_is_not_remembered(
    settings, adam, tenant_a, tenant_b, monkeypatch
):
    from trunks.tenants import credentials

    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=KEY)
    ciphertext = _raw_ciphertext(tenant_a)
    decrypts = []
    decrypt = credentials._decrypt
    monkeypatch.setattr(
        credentials, "_decrypt", lambda *args: decrypts.append(args[1:]) or decrypt(*args)
    )
    credentials._decrypted.cache_clear()
    for _ in range(3):
        assert api_key_decrypt(tenant_id=tenant_a.pk, ciphertext=ciphertext) == KEY
    assert decrypts == [(tenant_a.pk, ciphertext)]
    # Another tenant's claim on the same ciphertext is refused every time, never remembered.
    for _ in range(2):
        with pytest.raises(CredentialError):
            api_key_decrypt(tenant_id=tenant_b.pk, ciphertext=ciphertext)
    assert decrypts[1:] == [(tenant_b.pk, ciphertext)] * 2
    # Without the encryption key that made it, the remembered key is not given out.
    settings.CREDENTIALS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CredentialError):
        api_key_decrypt(tenant_id=tenant_a.pk, ciphertext=ciphertext)


def test_rotation_reencrypts_under_the_new_key_and_keeps_the_plaintext(
    settings, adam, root, tenant_a, tenant_b
):
    old = list(settings.CREDENTIALS_ENCRYPTION_KEYS)
    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=KEY)
    services.tenant_credential_set(actor=root, tenant=tenant_b, api_key="bravo-key-7777")
    before = {t: _raw_ciphertext(t) for t in (tenant_a, tenant_b)}

    new = Fernet.generate_key().decode()
    settings.CREDENTIALS_ENCRYPTION_KEYS = [new, *old]
    call_command("credentials_rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115

    after = {t: _raw_ciphertext(t) for t in (tenant_a, tenant_b)}
    for tenant in (tenant_a, tenant_b):
        assert after[tenant] != before[tenant]
    # Only the new key is needed now: the old one can be dropped.
    settings.CREDENTIALS_ENCRYPTION_KEYS = [new]
    assert api_key_decrypt(tenant_id=tenant_a.pk, ciphertext=after[tenant_a]) == KEY
    assert api_key_decrypt(tenant_id=tenant_b.pk, ciphertext=after[tenant_b]) == "bravo-key-7777"
    with pytest.raises(CredentialError):
        api_key_decrypt(tenant_id=tenant_a.pk, ciphertext=before[tenant_a])


def test_rotation_leaves_an_unreadable_key_alone_and_says_so(settings, adam, tenant_a, tenant_b):
    from django.core.management.base import CommandError

    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=KEY)
    # A key stored under an encryption key nobody has any more.
    stranger = Fernet(Fernet.generate_key()).encrypt(b'{"tenant": 0, "key": "x"}').decode()
    Tenant.objects.filter(pk=tenant_b.pk).update(api_key_ciphertext=stranger, api_key_last4="xxxx")
    settings.CREDENTIALS_ENCRYPTION_KEYS = [
        Fernet.generate_key().decode(),
        *settings.CREDENTIALS_ENCRYPTION_KEYS,
    ]
    before_a = _raw_ciphertext(tenant_a)
    with pytest.raises(CommandError, match="bravo"):
        call_command("credentials_rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _raw_ciphertext(tenant_a) != before_a  # the good one was still rotated
    assert _raw_ciphertext(tenant_b) == stranger


def test_mark_failed_shows_the_connection_as_failing(tenant_a):
    services.tenant_connection_mark_failed(tenant=tenant_a)
    tenant_a.refresh_from_db()
    assert tenant_a.connection_ok is False
    assert "401" in tenant_a.connection_message
    assert tenant_a.connection_checked_at is not None


# --- Members --------------------------------------------------------------------------------------


def test_admin_adds_a_user_of_another_of_their_tenants_and_it_is_audited(
    adam, tenant_a, tenant_b, bob
):
    Membership.objects.create(user=adam, tenant=tenant_b, role=Role.ADMIN)
    added = members.member_add(actor=adam, tenant=tenant_a, username="bob", role="manager")
    assert not added.user_created and added.password == ""
    assert added.membership.role == Role.MANAGER and added.membership.user == bob
    event = _events(tenant_a, AuditKind.MEMBER_ADDED).get()
    assert event.data == {"username": "bob", "role": "manager", "user_created": False}
    assert event.actor == adam


def test_adding_an_unknown_user_needs_create_and_then_shows_a_password_once(adam, tenant_a):
    assert members.member_add(
        actor=adam, tenant=tenant_a, username="newbie", role="staff"
    ).invitation  # without "create", only an invitation (which tells nothing)
    added = members.member_add(
        actor=adam, tenant=tenant_a, username="newbie", role="staff", create_user=True
    )
    assert added.user_created and len(added.password) >= 16
    user = added.membership.user
    assert user.check_password(added.password)
    assert added.password not in user.password  # hashed
    event = _events(tenant_a, AuditKind.MEMBER_ADDED).get()
    assert added.password not in str(event.data)


def test_a_chosen_password_must_pass_the_password_rules(adam, tenant_a):
    with pytest.raises(InvalidInput) as caught:
        members.member_add(
            actor=adam,
            tenant=tenant_a,
            username="newbie",
            role="staff",
            create_user=True,
            password="12345",
        )
    assert caught.value.field == "password"
    assert not Membership.objects.filter(user__username="newbie").exists()


@pytest.mark.parametrize(
    ("username", "role", "error"),
    [
        ("", "staff", InvalidInput),
        ("bad user!", "staff", InvalidInput),
        ("someone", "owner", InvalidInput),
        ("alice", "staff", Conflict),
    ],
)
def test_member_add_refuses_bad_input(adam, alice, tenant_a, username, role, error):
    with pytest.raises(error):
        members.member_add(
            actor=adam, tenant=tenant_a, username=username, role=role, create_user=True
        )


def test_nobody_but_the_tenants_admins_manages_its_members(alice, mallory, bob, charlie, tenant_a):
    membership = Membership.objects.get(user=alice)
    for actor in (alice, mallory, bob, charlie):
        with pytest.raises(NotPermitted):
            members.member_add(actor=actor, tenant=tenant_a, username="bob", role="admin")
        with pytest.raises(NotPermitted):
            members.member_set_role(
                actor=actor, tenant=tenant_a, membership_id=membership.pk, role="admin"
            )
        with pytest.raises(NotPermitted):
            members.member_remove(actor=actor, tenant=tenant_a, membership_id=membership.pk)
    assert Membership.objects.get(pk=membership.pk).role == Role.STAFF


def test_role_change_and_removal_are_audited(adam, alice, tenant_a):
    membership = Membership.objects.get(user=alice)
    members.member_set_role(
        actor=adam, tenant=tenant_a, membership_id=membership.pk, role="manager"
    )
    members.member_remove(actor=adam, tenant=tenant_a, membership_id=membership.pk)
    assert not Membership.objects.filter(pk=membership.pk).exists()
    role_event, removed_event = (
        _events(tenant_a, AuditKind.MEMBER_ROLE_CHANGED).get(),
        _events(tenant_a, AuditKind.MEMBER_REMOVED).get(),
    )
    assert role_event.data == {"username": "alice", "role": ["staff", "manager"]}
    assert removed_event.data == {"username": "alice", "role": "manager"}
    assert removed_event.status == AuditStatus.SUCCEEDED


def test_a_member_id_of_another_tenant_is_not_found(adam, bob, tenant_a):
    bobs = Membership.objects.get(user=bob)
    with pytest.raises(NotFound):
        members.member_remove(actor=adam, tenant=tenant_a, membership_id=bobs.pk)
    assert Membership.objects.filter(pk=bobs.pk).exists()


def test_a_tenant_admin_cannot_remove_or_demote_the_last_admin(adam, root, tenant_a):
    own = Membership.objects.get(user=adam)
    with pytest.raises(Conflict):
        members.member_set_role(actor=adam, tenant=tenant_a, membership_id=own.pk, role="staff")
    with pytest.raises(Conflict):
        members.member_remove(actor=adam, tenant=tenant_a, membership_id=own.pk)
    # With a second admin it works; a superuser may do it anyway.
    second = members.member_add(
        actor=adam, tenant=tenant_a, username="eve", role="admin", create_user=True
    )
    members.member_set_role(actor=adam, tenant=tenant_a, membership_id=own.pk, role="staff")
    members.member_remove(actor=root, tenant=tenant_a, membership_id=second.membership.pk)
    assert not Membership.objects.filter(tenant=tenant_a, role=Role.ADMIN).exists()


def test_superusers_are_admins_of_every_tenant(root, tenant_b):
    added = members.member_add(
        actor=root, tenant=tenant_b, username="newadmin", role="admin", create_user=True
    )
    assert added.membership.tenant == tenant_b
