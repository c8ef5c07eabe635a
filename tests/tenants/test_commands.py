"""Scripted setup: tenant_set, member_add, tenant_list, demo_seed; and the encryption-key check."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from trunks.models import AuditKind, AuditRecord, Membership, Role, Tenant
from trunks.sandbox.models import SandboxAccount
from trunks.tenants.credentials import api_key_decrypt

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

KEY = "cli-secret-key-WXYZ9876"


def run(*args, stdin: str = "", monkeypatch=None) -> str:
    out = io.StringIO()
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_tenant_set_creates_a_tenant_with_the_key_from_stdin(db, monkeypatch):
    out = run(
        "tenant_set",
        "echo",
        "--name",
        "Echo Telecom",
        "--base-url",
        "https://api.example.com/v1",
        "--api-key-stdin",
        stdin=KEY + "\n",
        monkeypatch=monkeypatch,
    )
    assert "Created tenant echo" in out and "••••9876" in out and KEY not in out
    tenant = Tenant.objects.get(slug="echo")
    assert tenant.base_url == "https://api.example.com/v1"
    assert api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext) == KEY
    event = AuditRecord.objects.get(tenant=tenant, kind=AuditKind.KEY_SET)
    assert event.data["via"] == "command line"


def test_tenant_set_reads_the_key_from_the_environment_and_is_idempotent(db, monkeypatch):
    monkeypatch.setenv("CRAZYTEL_API_KEY", KEY)
    run("tenant_set", "echo", "--name", "Echo Telecom")
    out = run("tenant_set", "echo", "--name", "Echo Telecom")
    assert "unchanged" in out
    tenant = Tenant.objects.get(slug="echo")
    assert list(
        AuditRecord.objects.filter(tenant=tenant)
        .order_by("chain_seq")
        .values_list("kind", flat=True)
    ) == [AuditKind.TENANT_CREATED, AuditKind.KEY_SET]
    monkeypatch.setenv("CRAZYTEL_API_KEY", "another-key-0000")
    run("tenant_set", "echo", "--inactive")
    tenant.refresh_from_db()
    assert tenant.api_key_last4 == "0000" and not tenant.is_active


def test_tenant_set_never_takes_the_key_on_the_command_line(db):
    with pytest.raises(CommandError):
        call_command("tenant_set", "echo", "--name", "Echo", "--api-key", KEY)
    assert not Tenant.objects.exists()


def test_tenant_set_explains_what_is_missing_or_wrong(db, tenant_a, monkeypatch):
    monkeypatch.delenv("CRAZYTEL_API_KEY", raising=False)
    with pytest.raises(CommandError, match="give --name"):
        run("tenant_set", "nope")
    with pytest.raises(CommandError, match="short name"):
        run("tenant_set", "Bad Slug!", "--name", "X")
    with pytest.raises(CommandError, match="stdin held no key"):
        run("tenant_set", "alpha", "--api-key-stdin", stdin="", monkeypatch=monkeypatch)


def test_member_add_creates_a_user_and_prints_the_password_once(tenant_a):
    out = run("member_add", "alpha", "zoe", "--role", "manager")
    password = out.split("(shown once): ")[1].strip()
    membership = Membership.objects.get(user__username="zoe")
    assert membership.role == Role.MANAGER and membership.user.check_password(password)
    # Again: the role changes, no new password.
    out = run("member_add", "alpha", "zoe", "--role", "staff")
    assert "shown once" not in out
    membership.refresh_from_db()
    assert membership.role == Role.STAFF


def test_member_add_takes_a_password_from_stdin_and_checks_it(tenant_a, monkeypatch):
    with pytest.raises(CommandError, match="too short"):
        run(
            "member_add",
            "alpha",
            "yan",
            "--role",
            "staff",
            "--password-stdin",
            stdin="short\n",
            monkeypatch=monkeypatch,
        )
    assert not Membership.objects.filter(user__username="yan").exists()
    out = run(
        "member_add",
        "alpha",
        "yan",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a-long-enough-passphrase\n",
        monkeypatch=monkeypatch,
    )
    assert "shown once" not in out
    assert Membership.objects.get(user__username="yan").user.check_password(
        "a-long-enough-passphrase"
    )


def test_member_add_refuses_an_unknown_tenant_or_role(db):
    with pytest.raises(CommandError, match="no tenant"):
        run("member_add", "nope", "zoe", "--role", "staff")
    with pytest.raises(CommandError):
        call_command("member_add", "nope", "zoe", "--role", "owner")


def test_tenant_list_masks_keys(tenant_a, tenant_b, alice, bob, monkeypatch):
    monkeypatch.setenv("CRAZYTEL_API_KEY", KEY)
    run("tenant_set", "alpha")
    out = run("tenant_list")
    assert "alpha  Alpha Telecom  [active]  key: ••••9876" in out
    assert "bravo  Bravo Networks  [active]  key: no key" in out
    assert "alice" in out and "bob" in out
    assert KEY not in out


def test_demo_seed_is_idempotent_and_prints_new_passwords(db):
    first = run("demo_seed", "--base-url", "http://127.0.0.1:8765/sandbox/api/v1")
    second = run("demo_seed", "--base-url", "http://127.0.0.1:8765/sandbox/api/v1")
    tenant = Tenant.objects.get(slug="demo")
    assert tenant.base_url == "http://127.0.0.1:8765/sandbox/api/v1"
    roles = dict(Membership.objects.filter(tenant=tenant).values_list("user__username", "role"))
    assert roles == {"demo-staff": "staff", "demo-manager": "manager", "demo-admin": "admin"}
    assert first != second  # fresh passwords each start
    for line in second.splitlines()[2:]:
        username, password = line.split()[:2]
        assert Membership.objects.get(user__username=username).user.check_password(password)
    # The tenant's key is the sandbox account's, stored encrypted like any other.
    account = SandboxAccount.objects.get(name="Demo team")
    assert api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext) == (
        account.api_key
    )
    assert f"API key ••••{account.api_key[-4:]}" in first
    # The second run recorded nothing new.
    assert AuditRecord.objects.filter(tenant=tenant).count() == 5
