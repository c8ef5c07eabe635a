"""The audit log survives TRUNCATE and `manage.py flush`, and the portal can run as a role that
cannot erase it (portal/ops/roles.sql)."""

import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from portal.management.commands import flush as flush_command
from tests.factories import audit_attempt
from trunks.audit.writer import audit_attempt_finish
from trunks.models import AuditRecord, AuditStatus, Tenant

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="The TRUNCATE trigger and the roles exist on PostgreSQL only; run with "
    "DATABASE_URL=postgres://... to test them.",
)
ROLES_SQL = Path(settings.BASE_DIR) / "portal" / "ops" / "roles.sql"


def _refused(sql: str, match: str = "append-only") -> None:
    with connection.cursor() as cursor:
        # Run the test transaction's deferred FK checks first: TRUNCATE refuses otherwise.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with (
        pytest.raises(DatabaseError, match=match),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


# --- flush, on any database ------------------------------------------------------------------------


@pytest.fixture
def production_like(monkeypatch):
    """flush as on a real database (the test runner's own databases are exempt)."""
    monkeypatch.setattr(flush_command, "is_test_database", lambda connection: False)


def test_flush_refuses_while_the_audit_log_holds_records(production_like, tenant_a, alice):
    audit_attempt(tenant=tenant_a, actor=alice)
    audit_attempt(tenant=tenant_a, actor=alice, status="failed")
    with pytest.raises(CommandError) as refused:
        call_command("flush", interactive=False, verbosity=0)
    message = str(refused.value)
    assert "audit log holds 2 record(s)" in message
    assert "append-only" in message and "Nothing was deleted" in message
    assert AuditRecord.objects.count() == 2
    assert Tenant.objects.filter(pk=tenant_a.pk).exists()


def test_flush_works_on_a_database_without_audit_records(
    transactional_db, production_like, tenant_a
):
    call_command("flush", interactive=False, verbosity=0)
    assert not Tenant.objects.exists()


def test_the_test_runner_may_still_flush_its_own_database(transactional_db, tenant_a, alice):
    """What Django does between transactional tests, with the TRUNCATE trigger in place."""
    audit_attempt(tenant=tenant_a, actor=alice)
    assert flush_command.is_test_database(connection)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditRecord.objects.exists()
    if ON_POSTGRES:  # the trigger is back on afterwards
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tgenabled FROM pg_trigger WHERE tgname = 'trunks_auditrecord_no_truncate'"
            )
            assert cursor.fetchone() == ("O",)


# --- TRUNCATE, on PostgreSQL -----------------------------------------------------------------------


@pytest.mark.postgres
@needs_postgres
def test_truncate_is_refused_while_records_exist(tenant_a, alice):
    audit_attempt(tenant=tenant_a, actor=alice)
    _refused("TRUNCATE trunks_auditrecord CASCADE")  # tables that reference it (trunks) go too
    _refused("TRUNCATE trunks_auditrecord RESTART IDENTITY CASCADE")
    # Through the table it references, as flush's single TRUNCATE of every table does.
    _refused("TRUNCATE trunks_tenant CASCADE")
    assert AuditRecord.objects.count() == 1


@pytest.mark.postgres
@needs_postgres
def test_an_empty_audit_table_may_be_truncated(db):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE trunks_auditrecord CASCADE")


@pytest.mark.postgres
@needs_postgres
def test_the_truncate_trigger_exists_and_is_statement_level(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled, tgtype FROM pg_trigger WHERE tgname = 'trunks_auditrecord_no_truncate'"
        )
        enabled, tgtype = cursor.fetchone()
    assert enabled == "O"
    # pg_trigger.tgtype bits: 1 = ROW (unset: statement), 2 = BEFORE, 32 = TRUNCATE.
    assert (tgtype & 1, tgtype & 2, tgtype & 32) == (0, 2, 32)


# --- The application role of portal/ops/roles.sql --------------------------------------------------


@pytest.fixture
def app_role(db):
    """roles.sql applied for a throwaway owner/app pair (rolled back with the test's transaction)."""
    suffix = uuid.uuid4().hex[:8]
    owner, app = f"p18_owner_{suffix}", f"p18_app_{suffix}"
    sql = ROLES_SQL.read_text()
    sql = sql.replace("ON DATABASE portal ", f'ON DATABASE "{connection.settings_dict["NAME"]}" ')
    sql = sql.replace("portal_owner", owner).replace("portal_app", app)
    statements = "\n".join(
        line for line in sql.splitlines() if not line.lstrip().startswith("--")
    ).split(";")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {owner} NOLOGIN")
        cursor.execute(f"CREATE ROLE {app} NOLOGIN")
        for statement in statements:
            if statement.strip():
                cursor.execute(statement)
    return app


def _as(role: str, sql: str, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {role}")
        cursor.execute(sql, params)
        return cursor.rowcount


@pytest.mark.postgres
@needs_postgres
def test_the_app_role_cannot_erase_the_audit_log(app_role, tenant_a, alice):
    record = audit_attempt(tenant=tenant_a, actor=alice)
    for sql in (
        f"DELETE FROM trunks_auditrecord WHERE id = {record.pk}",
        "TRUNCATE trunks_auditrecord",
    ):
        with pytest.raises(DatabaseError, match="permission denied"):
            _as(app_role, sql)
    with pytest.raises(DatabaseError, match="must be owner"):
        _as(app_role, "ALTER TABLE trunks_auditrecord DISABLE TRIGGER USER")
    assert AuditRecord.objects.filter(pk=record.pk).exists()


@pytest.mark.postgres
@needs_postgres
def test_the_app_role_can_do_everything_the_portal_does(app_role, tenant_a, alice):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {app_role}")
        # Append and complete an attempt, through the real writer.
        pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
        audit_attempt_finish(record=pending, status=AuditStatus.SUCCEEDED, trunk_username="CT1")
        # Ordinary tables keep every right (sessions and login records are deleted routinely).
        cursor.execute("DELETE FROM django_session")
        cursor.execute("UPDATE trunks_tenant SET name = name WHERE id = %s", [tenant_a.pk])
        cursor.execute("SELECT count(*) FROM trunks_auditrecord")
        assert cursor.fetchone() == (1,)
    assert AuditRecord.objects.get(pk=pending.pk).status == AuditStatus.SUCCEEDED
