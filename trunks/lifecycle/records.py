"""The Trunk record of a trunk the portal created: written from the attempt that created it.

Built for the write that finalises a successful create (trunks.provisioning.services hands it to
trunks.audit.writer, which commits it with the final record), or added inside the transaction that
records a manager's resolution "created" (trunks.audit.services), so single and bulk creates alike
get their record without doing anything else.
"""

from typing import Any

from trunks.crazytel.contract import TRUNK_FIELDS
from trunks.models import AuditRecord, Trunk
from trunks.rows import row_insert, row_new

# The settings a Trunk keeps: every documented field but the secret one (the password).
SETTING_NAMES = tuple(spec.name for spec in TRUNK_FIELDS if not spec.secret)
# A switch not sent is its documented default.
_SWITCH_DEFAULTS = {spec.name: spec.default for spec in TRUNK_FIELDS if spec.type is bool}


def trunk_settings_of(data: dict[str, Any]) -> dict[str, Any]:
    """The Trunk columns for settings in `data` (sent or answered), typed as the spec says."""
    found: dict[str, Any] = {}
    for spec in TRUNK_FIELDS:
        if spec.secret or spec.name not in data:
            continue
        value = data[spec.name]
        if spec.type is bool:
            found[spec.name] = bool(value) if value is not None else spec.default
        else:
            found[spec.name] = "" if value is None else str(value)
    return found


def trunk_settings(trunk: Trunk) -> dict[str, Any]:
    """A trunk's settings as last known (field name → value)."""
    return {name: getattr(trunk, name) for name in SETTING_NAMES}


def trunk_row_from_attempt(
    *, attempt: AuditRecord, username: str, trunk_id: str = "", at=None
) -> Trunk | None:
    """The Trunk a create attempt made (`attempt` holds what was sent), not yet written; None when
    Crazytel named no username. The finalising write INSERTs it skipping a username already
    recorded (ON CONFLICT DO NOTHING; the username is the Trunk's only unique column besides its
    id), so no look-up first."""
    if not username:
        return None
    return row_new(
        Trunk,
        {
            "tenant_id": attempt.tenant_id,
            "trunk_id": (trunk_id or "")[:64],
            "username": username,
            **_SWITCH_DEFAULTS,
            **trunk_settings_of(attempt.data or {}),
            "created_by_id": attempt.actor_id,
            "created_by_username": attempt.actor_username,
            "created_at": at or attempt.finished_at or attempt.started_at,
            "created_record_id": attempt.pk,
        },
        related={"created_record": attempt},
    )


def trunk_record_from_attempt(
    *, attempt: AuditRecord, username: str, trunk_id: str = "", at=None
) -> None:
    """Add the Trunk a create attempt made, leaving a username already recorded as it is. Call
    inside the finalising transaction; one INSERT written by hand (trunks.rows)."""
    trunk = trunk_row_from_attempt(attempt=attempt, username=username, trunk_id=trunk_id, at=at)
    if trunk is not None:
        row_insert(trunk, ignore_conflicts=True)
