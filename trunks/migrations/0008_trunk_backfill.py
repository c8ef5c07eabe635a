"""Fill the Trunk table from the audit log: every trunk created successfully, and every unknown
outcome a manager resolved as created. Self-contained (historical models only)."""

from django.db import migrations

BOOL_DEFAULTS = {
    "enabled": True,
    "hide_caller_id": False,
    "softphone_show_balance": True,
    "softphone_sync_sms": False,
}
TEXT_FIELDS = ("caller_id_number", "sms_sender", "description", "area_code")


def _settings(data):
    data = data if isinstance(data, dict) else {}
    found = {}
    for name, default in BOOL_DEFAULTS.items():
        value = data.get(name)
        found[name] = bool(value) if value is not None else default
    for name in TEXT_FIELDS:
        value = data.get(name)
        found[name] = "" if value is None else str(value)[: 255 if name == "description" else 32]
    found["area_code"] = found["area_code"][:10]
    return found


def backfill(apps, schema_editor):
    AuditRecord = apps.get_model("trunks", "AuditRecord")
    Trunk = apps.get_model("trunks", "Trunk")
    seen = set(Trunk.objects.values_list("username", flat=True))
    batch = []

    def add(attempt, username, trunk_id, at):
        if not username or username in seen:
            return
        seen.add(username)
        batch.append(
            Trunk(
                tenant_id=attempt.tenant_id,
                trunk_id=(trunk_id or "")[:64],
                username=username,
                created_by_id=attempt.actor_id,
                created_by_username=attempt.actor_username,
                created_at=at,
                created_record_id=attempt.pk,
                **_settings(attempt.data),
            )
        )
        if len(batch) >= 1000:
            Trunk.objects.bulk_create(batch)
            batch.clear()

    created = AuditRecord.objects.filter(kind="trunk_create", status="succeeded").exclude(
        trunk_username=""
    )
    for attempt in created.order_by("started_at", "id").iterator(chunk_size=2000):
        add(
            attempt,
            attempt.trunk_username,
            attempt.trunk_id,
            attempt.finished_at or attempt.started_at,
        )
    resolutions = AuditRecord.objects.filter(kind="outcome_resolved", related__isnull=False)
    for resolution in resolutions.select_related("related").order_by("started_at", "id"):
        data = resolution.data if isinstance(resolution.data, dict) else {}
        if data.get("created") and resolution.related.kind == "trunk_create":
            add(
                resolution.related,
                resolution.trunk_username,
                data.get("trunk_id"),
                resolution.started_at,
            )
    if batch:
        Trunk.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("trunks", "0007_trunk")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
