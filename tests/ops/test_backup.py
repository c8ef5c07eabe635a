"""Backups: a pg_dump of a portal with tenants, encrypted keys and chained audit logs restores into
a fresh database where the portal works — keys decrypt (with the same CREDENTIALS_ENCRYPTION_KEYS,
and only with them), `verify_audit` passes, the audit log's page answers."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from tests.factories import MembershipFactory, TenantFactory, UserFactory, audit_attempt
from tests.trunk_fixtures import key_tenant
from trunks.audit.writer import audit_event_record
from trunks.models import AuditKind, Role

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not ON_POSTGRES,
        reason="Backups are pg_dump/pg_restore of PostgreSQL; run with DATABASE_URL=postgres://...",
    ),
    pytest.mark.skipif(not shutil.which("pg_dump"), reason="pg_dump/pg_restore are not installed"),
]

KEYS = {"alpha": "ct-backup-key-alpha-0001", "bravo": "ct-backup-key-bravo-0002"}

# Runs inside `manage.py shell` on the restored database: what a person would check.
CHECK = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from trunks.tenants.credentials import CredentialError, api_key_decrypt
from trunks.models import AuditRecord, Tenant

keys = {}
for tenant in Tenant.objects.order_by("slug"):
    try:
        keys[tenant.slug] = api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext)
    except CredentialError as error:
        keys[tenant.slug] = f"error: {error}"
client = Client()
client.force_login(get_user_model().objects.get(username="mara"))
page = client.get("/audit/", secure=True)
print(json.dumps({
    "keys": keys,
    "records": AuditRecord.objects.count(),
    "audit_page": page.status_code,
    "shows_record": "Backed-up desk phone" in page.content.decode(),
}))
"""


def _pg_env() -> dict[str, str]:
    s = connection.settings_dict
    env = {**os.environ, "PGHOST": s["HOST"] or "127.0.0.1", "PGPORT": str(s["PORT"] or 5432)}
    env["PGUSER"] = s["USER"] or "postgres"
    if s["PASSWORD"]:
        env["PGPASSWORD"] = s["PASSWORD"]
    return env


def _portal(database: str, *args: str, keys: list[str]) -> subprocess.CompletedProcess:
    s = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{s['USER'] or 'postgres'}:{s['PASSWORD'] or ''}@"
            f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{database}"
        ),
        "CREDENTIALS_ENCRYPTION_KEYS": ",".join(keys),
        # DEBUG only so static files come from the finders (no collectstatic manifest here).
        "DEBUG": "true",
        "SECRET_KEY": "restore-test-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "testserver",
        "CACHE_URL": "locmemcache://",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def portal_with_history(transactional_db):
    """Two tenants with stored keys, people, and chained audit logs — committed, for pg_dump."""
    mara = UserFactory(username="mara")
    for slug in KEYS:
        tenant = key_tenant(TenantFactory(name=slug.title(), slug=slug), KEYS[slug])
        staff = MembershipFactory(tenant=tenant, role=Role.STAFF).user
        MembershipFactory(user=mara, tenant=tenant, role=Role.MANAGER)
        for status in ("succeeded", "failed", "unknown", "succeeded"):
            audit_attempt(
                tenant=tenant, actor=staff, status=status, description="Backed-up desk phone"
            )
        audit_event_record(kind=AuditKind.KEY_SET, tenant=tenant, actor=mara)


@pytest.fixture
def restore_database():
    name = f"{connection.settings_dict['NAME']}_restore"[:63]
    env = _pg_env()
    subprocess.run(["dropdb", "--if-exists", name], env=env, check=True)
    subprocess.run(["createdb", name], env=env, check=True)
    yield name
    subprocess.run(["dropdb", "--if-exists", "--force", name], env=env, check=True)


def test_a_dump_restores_into_a_working_portal_only_with_its_fernet_keys(
    portal_with_history, restore_database, tmp_path
):
    dump = tmp_path / "portal.dump"
    env = _pg_env()
    # What the README's Backups section says to run.
    subprocess.run(
        [
            "pg_dump",
            "--format=custom",
            "--no-owner",
            f"--file={dump}",
            connection.settings_dict["NAME"],
        ],
        env=env,
        check=True,
    )
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restore_database}", str(dump)],
        env=env,
        check=True,
    )

    keys = settings.CREDENTIALS_ENCRYPTION_KEYS
    verified = _portal(restore_database, "verify_audit", keys=keys)
    assert verified.returncode == 0, verified.stderr
    assert "OK: 2 tenant chain(s), 10 sealed record(s) verified" in verified.stdout

    checked = _portal(restore_database, "shell", "-c", CHECK, keys=keys)
    assert checked.returncode == 0, checked.stderr
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert result == {"keys": KEYS, "records": 10, "audit_page": 200, "shows_record": True}

    # The append-only triggers came back with the schema.
    triggers = subprocess.run(
        [
            "psql",
            "-tAc",
            "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger "
            "WHERE tgrelid = 'trunks_auditrecord'::regclass AND NOT tgisinternal",
            restore_database,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert triggers == "trunks_auditrecord_append_only,trunks_auditrecord_no_truncate"

    # Without the Fernet keys the stored API keys are lost; the audit log still verifies.
    other_key = Fernet.generate_key().decode()
    checked = _portal(restore_database, "shell", "-c", CHECK, keys=[other_key])
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert all(v.startswith("error: ") for v in result["keys"].values()), result["keys"]
    assert _portal(restore_database, "verify_audit", keys=[other_key]).returncode == 0
