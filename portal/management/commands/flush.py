"""`manage.py flush`, refused while the audit log holds records: it would erase it without a word.

Django's own flush empties every table (TRUNCATE on PostgreSQL, DELETE on SQLite). The audit log is
append-only (migrations 0004 and 0005 make PostgreSQL refuse DELETE and TRUNCATE of it), so flush
stops first with a message saying why, instead of failing half-way on the trigger — or, on SQLite,
succeeding. The project's app overrides the command here so that it also holds for `call_command`.

Test databases are the exception: Django's test runner flushes them between transactional tests.
"""

import contextlib
import os

from django.core import mail
from django.core.management.base import CommandError
from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections
from django.db.backends.base.creation import TEST_DATABASE_PREFIX

from trunks.models import AuditRecord

TRUNCATE_TRIGGER = "trunks_auditrecord_no_truncate"


def is_test_database(connection) -> bool:
    """A database Django's test runner made (and will drop), while the test environment is up."""
    if not hasattr(mail, "outbox"):  # set by django.test.utils.setup_test_environment
        return False
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        return True
    # PostgreSQL's `test_portal`, SQLite's `/dev/shm/test_portal-….sqlite3` (tests/isolation.py).
    return os.path.basename(str(connection.settings_dict["NAME"])).startswith(TEST_DATABASE_PREFIX)


def audit_records_count(connection) -> int:
    if AuditRecord._meta.db_table not in connection.introspection.table_names():
        return 0
    return AuditRecord.objects.using(connection.alias).count()


@contextlib.contextmanager
def _truncate_trigger_off(connection):
    if connection.vendor != "postgresql":
        yield
        return
    table = connection.ops.quote_name(AuditRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {TRUNCATE_TRIGGER}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {TRUNCATE_TRIGGER}")


class Command(DjangoFlush):
    help = DjangoFlush.help + " Refused while the audit log holds records (it is append-only)."

    def handle(self, **options):
        connection = connections[options["database"]]
        count = audit_records_count(connection)
        if not count:
            return super().handle(**options)
        if not is_test_database(connection):
            raise CommandError(
                f"Refusing to flush the database {connection.settings_dict['NAME']!r}: its audit "
                f"log holds {count:,} record(s), and the audit log is append-only. Nothing was "
                "deleted. To start again from an empty portal, create a new database and run "
                "`manage.py migrate` on it; keep a dump of this one first (README, Backups)."
            )
        with _truncate_trigger_off(connection):
            return super().handle(**options)
