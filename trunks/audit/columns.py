"""How an audit record reads to a person: the log's columns (page and export alike), numbers in
national format, and the details shown on a record's page."""

from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from trunks.crazytel.contract import TRUNK_FIELDS, TRUNK_NUMBER_FIELDS
from trunks.models import AuditKind, AuditRecord, Role
from trunks.numbers import number_national

# (key, heading): the columns of the log page, and of its CSV and JSON Lines exports, in order.
# "No." is the record's place in its tenant's chain (trunks.audit.chain): numbered per tenant, not
# by the database id, whose gaps would look like deletions and reveal other tenants' activity.
AUDIT_COLUMNS: list[tuple[str, str]] = [
    ("number", "No."),
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
    "chain_seq",
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
_ROLE_LABELS = dict(Role.choices)


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


def record_number(record: AuditRecord) -> str:
    """How the log numbers a record: its place in its tenant's hash chain ("#12"), given when it
    becomes final; a pending attempt has none yet."""
    return f"#{record.chain_seq}" if record.chain_seq else "pending"


def audit_row(record: AuditRecord, *, local=None) -> dict[str, Any]:
    """One record as the log's columns (plain values; the When column in ISO 8601, local time:
    `local`, when the caller has it already)."""
    if local is None:
        local = timezone.localtime(record.started_at)
    return {
        "number": record.chain_seq,
        "when": local.isoformat(timespec="seconds"),
        "tenant": record.tenant_name,
        "actor": record.actor_username,
        "kind": _KIND_LABELS.get(record.kind, record.kind),
        "status": record.status,
        "trunk_username": record.trunk_username,
        "caller_id": number_national(record.caller_id_number),
        "description": record.description,
        "outcome": outcome_text(record),
    }


# The trunk's own labels ("Caller ID number"), so a record reads like the form did; then the
# labels of the other fields events record.
_FIELD_LABELS = {
    **{spec.name: spec.label for spec in TRUNK_FIELDS},
    "name": "Name",
    "slug": "Short name",
    "base_url": "Crazytel base URL",
    "is_active": "Active",
    "fingerprint": "API key",
    "ok": "Connected",
    "account_code": "Crazytel account",
    "error_category": "Error category",
    "user_created": "New account",
    "retry_of": "Retry of attempt",
    "via": "Done from",
}
ARROW = " → "


def field_label(key: Any) -> str:
    return _FIELD_LABELS.get(str(key)) or str(key).replace("_", " ").capitalize()


def value_text(key: Any, value: Any) -> str:
    """One recorded value as a person reads it: numbers nationally, yes/no, a dash for nothing,
    a list or mapping as plain text (never JSON)."""
    if str(key) in NUMBER_KEYS and value not in (None, ""):
        return number_national(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{field_label(k)}: {value_text(k, v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(key, v) for v in value) or "—"
    return str(value)


def _is_change(value: Any) -> bool:
    # The diff convention: [before, after], each a plain value.
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and not any(isinstance(v, dict | list | tuple) for v in value)
    )


def change_text(key: Any, value: Any) -> str:
    """A [before, after] pair as "before → after"; any other value as value_text."""
    if _is_change(value):
        return value_text(key, value[0]) + ARROW + value_text(key, value[1])
    return value_text(key, value)


def data_items(data: Any) -> Iterator[tuple[str, str]]:
    """A record's submitted fields (or event details) as (label, value) for its page. Changes
    (`data["changes"] = {field: [before, after]}`, or a field recorded as `[old, new]` like a
    member's role) read "before → after", one line per field."""
    if not isinstance(data, dict):
        if data not in (None, "", {}):
            yield ("Data", str(data))
        return
    for key, value in data.items():
        if key == "changes" and isinstance(value, dict):
            for field, change in value.items():
                yield (field_label(field), change_text(field, change))
            continue
        yield (field_label(key), change_text(key, value))


def _role_text(role: Any) -> str:
    return str(_ROLE_LABELS.get(str(role), role)).lower()


def _changed_fields(data: dict) -> str:
    changes = data.get("changes")
    if not isinstance(changes, dict) or not changes:
        return ""
    if len(changes) == 1:
        (field, change), *_ = changes.items()
        return f"{field_label(field).lower()} {change_text(field, change)}"
    return ", ".join(field_label(f).lower() for f in changes)


def event_summary(kind: str, data: Any, trunk_username: str = "") -> str:
    """Whom or what an admin event affected, in one line ("Member jo added as staff"). Empty for
    a trunk attempt (its columns say it). Kinds it does not know read as their label plus what
    changed, so events added later read sensibly before they get a sentence of their own."""
    if kind == AuditKind.TRUNK_CREATE:
        return ""
    data = data if isinstance(data, dict) else {}
    who = data.get("username") or ""
    role = data.get("role")
    trunk = trunk_username or data.get("trunk_username") or ""
    if kind == AuditKind.MEMBER_ADDED:
        text = f"Member {who} added as {_role_text(role)}"
        return text + (" (new account)" if data.get("user_created") else "")
    if kind == AuditKind.MEMBER_REMOVED:
        return f"Member {who} removed" + (f" (was {_role_text(role)})" if role else "")
    if kind == AuditKind.MEMBER_ROLE_CHANGED:
        if _is_change(role):
            return f"Member {who}: {_role_text(role[0])}{ARROW}{_role_text(role[1])}"
        return f"Member {who}'s role changed"
    if kind == AuditKind.KEY_SET:
        return "API key set" + (f" ({data['fingerprint']})" if data.get("fingerprint") else "")
    if kind == AuditKind.KEY_REPLACED:
        return "API key replaced" + (
            f" (now {data['fingerprint']})" if data.get("fingerprint") else ""
        )
    if kind == AuditKind.TENANT_CREATED:
        return f"Tenant {data.get('name') or ''} created".replace("  ", " ")
    if kind == AuditKind.TENANT_UPDATED:
        changed = _changed_fields(data)
        return f"Tenant changed: {changed}" if changed else "Tenant changed"
    if kind == AuditKind.CONNECTION_TESTED:
        if data.get("ok"):
            account = data.get("account_code")
            return "Connection works" + (f" (account {account})" if account else "")
        return "Connection failed" + (
            f" ({data['error_category']})" if data.get("error_category") else ""
        )
    if kind == AuditKind.OUTCOME_RESOLVED:
        return (
            f"Resolved: trunk {trunk} was created"
            if data.get("created")
            else "Resolved: no trunk was created"
        )
    label = str(_KIND_LABELS.get(kind, str(kind).replace("_", " ").capitalize()))
    subject = trunk or who
    changed = _changed_fields(data)
    text = f"{label}: {subject}" if subject else label
    return f"{text}, {changed}" if changed else text


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
        (number, started, tenant, actor, kind, status, username, caller, description, upstream,
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
            number,
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
