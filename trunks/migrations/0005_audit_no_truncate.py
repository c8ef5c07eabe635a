"""The audit log refuses TRUNCATE too (PostgreSQL): 0004's row trigger cannot see it.

A statement-level BEFORE TRUNCATE trigger raises while the table holds any record, so neither
`TRUNCATE trunks_auditrecord`, a `TRUNCATE ... CASCADE` from a table it references, nor
`manage.py flush` wipes the log without a word. An empty table may still be truncated (nothing is
lost). Like 0004's trigger, only the table's owner can switch it off (ALTER TABLE ... DISABLE
TRIGGER); run the portal as a role that owns nothing and has no TRUNCATE or DELETE on the table
(README, "Database roles"), and it cannot.

SQLite has no TRUNCATE; `manage.py flush` refuses there too (portal/management/commands/flush.py).
"""

from django.db import migrations

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION trunks_auditrecord_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM trunks_auditrecord) THEN
        RAISE EXCEPTION 'audit records are append-only: TRUNCATE of trunks_auditrecord refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
"""

TRIGGER = """
CREATE TRIGGER trunks_auditrecord_no_truncate
BEFORE TRUNCATE ON trunks_auditrecord
FOR EACH STATEMENT EXECUTE FUNCTION trunks_auditrecord_no_truncate();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(TRIGGER_FUNCTION)
    schema_editor.execute("DROP TRIGGER IF EXISTS trunks_auditrecord_no_truncate ON trunks_auditrecord")
    schema_editor.execute(TRIGGER)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS trunks_auditrecord_no_truncate ON trunks_auditrecord")
    schema_editor.execute("DROP FUNCTION IF EXISTS trunks_auditrecord_no_truncate()")


class Migration(migrations.Migration):
    dependencies = [
        ("trunks", "0004_audit_append_only"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
