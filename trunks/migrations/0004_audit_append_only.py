"""The audit log is append-only in the database itself (PostgreSQL), and searchable at scale.

A trigger rejects every DELETE, and every UPDATE of a record that is already final: the only change
allowed is completing a `pending` attempt, once — and, so that users can still be deleted, setting
`actor_id` to NULL (ON DELETE SET NULL; the record keeps `actor_username`, which its hash covers).
TRUNCATE (test-database flushes) is not blocked. Trigram indexes serve the free-text filter.

SQLite has no such guard: there the portal's code is the only writer (trunks.audit).
"""

from django.db import migrations

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION trunks_auditrecord_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit records are append-only: DELETE of record % refused', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'pending' THEN
        RETURN NEW;  -- the one permitted completion
    END IF;
    IF NEW.actor_id IS NULL AND OLD.actor_id IS NOT NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;  -- the actor's user account was deleted
    END IF;
    RAISE EXCEPTION 'audit records are append-only: record % is final (%), UPDATE refused',
        OLD.id, OLD.status
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

TRIGGER = """
CREATE TRIGGER trunks_auditrecord_append_only
BEFORE UPDATE OR DELETE ON trunks_auditrecord
FOR EACH ROW EXECUTE FUNCTION trunks_auditrecord_append_only();
"""

# The kind indexes again, on PostgreSQL with INCLUDE (status): the chart's per-day counts by status
# become an index-only scan. Same names and key columns as the model's (migration 0003).
COVERING_INDEXES = [
    ("audit_tenant_kind", "tenant_id, kind, started_at DESC, id DESC"),
    ("audit_kind", "kind, started_at DESC, id DESC"),
]

TRIGRAM_INDEXES = [
    ("audit_trgm_trunk_username", "trunk_username"),
    ("audit_trgm_description", "description"),
    ("audit_trgm_caller_id", "caller_id_number"),
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # Directly: the function body's RAISE '%' placeholders are not query parameters.
        cursor.execute(TRIGGER_FUNCTION)
    schema_editor.execute("DROP TRIGGER IF EXISTS trunks_auditrecord_append_only ON trunks_auditrecord")
    schema_editor.execute(TRIGGER)
    for name, columns in COVERING_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(
            f"CREATE INDEX {name} ON trunks_auditrecord ({columns}) INCLUDE (status)"
        )
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES:
        # The expression Django's icontains lookup produces: UPPER("col"::text) LIKE UPPER(%s).
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON trunks_auditrecord "
            f"USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS trunks_auditrecord_append_only ON trunks_auditrecord")
    schema_editor.execute("DROP FUNCTION IF EXISTS trunks_auditrecord_append_only()")
    for name, _column in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    for name, columns in COVERING_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(f"CREATE INDEX {name} ON trunks_auditrecord ({columns})")


class Migration(migrations.Migration):
    dependencies = [
        ("trunks", "0003_audit_log_indexes"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
