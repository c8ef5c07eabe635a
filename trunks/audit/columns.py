"""How an audit record reads to a person: the log's columns (page and export alike), numbers in
national format, and the details shown on a record's page."""

import json
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from trunks.crazytel.contract import TRUNK_FIELDS, TRUNK_NUMBER_FIELDS
from trunks.models import AuditKind, AuditRecord
from trunks.numbers import number_national

# (key, heading): the columns of the log page, and of its CSV and JSON Lines exports, in order.
AUDIT_COLUMNS: list[tuple[str, str]] = [
    ("id", "ID"),
    ("when", "When"),
    ("tenant", "Tenant"),
    ("actor", "Who"),
    ("kind", "Kind"),
    ("status", "Status"),
    ("trunk_username", "Trunk username"),
    ("caller_id", "Caller ID"),
    ("description", "Description"),
    ("outcome", "Outcome"),
]

# The model fields those columns read: exports load only these.
AUDIT_COLUMN_FIELDS = [
    "id",
    "started_at",
    "tenant_name",
    "actor_username",
    "kind",
    "status",
    "trunk_username",
    "caller_id_number",
    "description",
    "upstream_status",
    "error_category",
    "error_message",
]

# Keys of submitted data that hold phone numbers (shown in national format).
NUMBER_KEYS = {*TRUNK_NUMBER_FIELDS, "number", "cli", "caller_id", "phone_number"}

_KIND_LABELS = dict(AuditKind.choices)


def outcome_text(record: AuditRecord) -> str:
    """What happened, in one line: upstream status, error category and message."""
    parts = []
    if record.upstream_status:
        parts.append(f"HTTP {record.upstream_status}")
    if record.error_category:
        parts.append(record.error_category)
    text = " · ".join(parts)
    if record.error_message:
        text = f"{text}: {record.error_message}" if text else record.error_message
    return text


def audit_row(record: AuditRecord) -> dict[str, Any]:
    """One record as the log's columns (plain values; the When column in ISO 8601, local time)."""
    return {
        "id": record.pk,
        "when": timezone.localtime(record.started_at).isoformat(timespec="seconds"),
        "tenant": record.tenant_name,
        "actor": record.actor_username,
        "kind": _KIND_LABELS.get(record.kind, record.kind),
        "status": record.status,
        "trunk_username": record.trunk_username,
        "caller_id": number_national(record.caller_id_number),
        "description": record.description,
        "outcome": outcome_text(record),
    }


# The trunk's own labels ("Caller ID number"), so a record reads like the form did.
_FIELD_LABELS = {spec.name: spec.label for spec in TRUNK_FIELDS}


def data_items(data: Any) -> Iterator[tuple[str, str]]:
    """A record's submitted fields (or event details) as (label, value) for its page."""
    if not isinstance(data, dict):
        if data not in (None, "", {}):
            yield ("Data", str(data))
        return
    for key, value in data.items():
        if key == "changes" and isinstance(value, dict):
            # A change's diff, {field: [before, after]}: one readable line per field.
            for name, pair in value.items():
                if isinstance(pair, list | tuple) and len(pair) == 2:
                    before, after = (_shown(str(name), v) for v in pair)
                    yield (_label(name), f"{before} → {after}")
            continue
        label = _label(key)
        yield (label, _shown(str(key), value))


def _label(key: Any) -> str:
    return _FIELD_LABELS.get(str(key)) or str(key).replace("_", " ").capitalize()


def _shown(key: str, value: Any) -> str:
    if key in NUMBER_KEYS:
        return number_national(value)
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


# --- Export rows -------------------------------------------------------------------------------
# Exports read a million records: no model instances, one values_list() tuple per record and a
# precomputed function per column (the same values audit_row gives a record).

# The fields an export row is made from, in this order.
EXPORT_FIELDS = tuple(AUDIT_COLUMN_FIELDS)


def export_row_function():
    """A function from an EXPORT_FIELDS tuple to the log's columns as a tuple (AUDIT_COLUMNS order).
    Made per export: it holds the current time zone and memos of this export's repeats."""
    zone = timezone.get_current_timezone()
    kind_labels = _KIND_LABELS
    numbers: dict[Any, str] = {}

    def row(values: tuple) -> tuple:
        (pk, started, tenant, actor, kind, status, username, caller, description, upstream,
         category, message) = values  # fmt: skip
        if caller in numbers:
            caller_text = numbers[caller]
        else:
            caller_text = numbers[caller] = number_national(caller)
            if len(numbers) > 65536:
                numbers.clear()
        if upstream:
            outcome = f"HTTP {upstream} · {category}" if category else f"HTTP {upstream}"
        else:
            outcome = category or ""
        if message:
            outcome = f"{outcome}: {message}" if outcome else message
        return (
            pk,
            started.astimezone(zone).isoformat(timespec="seconds"),
            tenant,
            actor,
            kind_labels.get(kind, kind),
            status,
            username,
            caller_text,
            description,
            outcome,
        )

    return row
