"""Resolving an attempt whose outcome was unknown: a manager records what Crazytel's account shows,
as a new event pointing at the attempt (the log is append-only)."""

import uuid

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from trunks.access import audit_actor, require_role
from trunks.crazytel.contract import USERNAME_INVALID, username_is_valid
from trunks.errors import Conflict, InvalidInput
from trunks.lifecycle.records import trunk_record_from_attempt
from trunks.models import AuditKind, AuditRecord, AuditStatus, Role, Tenant

from .writer import audit_event_record

RESOLUTION_NOTE_MAX = 1000


def audit_resolution_of(*, record: AuditRecord) -> AuditRecord | None:
    """The event that resolved `record`'s unknown outcome, if one did."""
    return (
        AuditRecord.objects.filter(related=record, kind=AuditKind.OUTCOME_RESOLVED)
        .order_by("started_at", "id")
        .first()
    )


def audit_unknown_resolve(
    *,
    actor,
    record: AuditRecord,
    created: bool,
    username: str | None,
    note: str,
    request: HttpRequest | None = None,
    trunk_id: str | None = None,
) -> AuditRecord:
    """Record what became of an attempt whose outcome was unknown: the trunk was created (as
    `username`, CT + 6 digits) or it was not. A new OUTCOME_RESOLVED event points at the attempt;
    the attempt itself never changes (the log is append-only). Managers and admins of the
    attempt's tenant only; an attempt is resolved once.
    """
    require_role(
        actor,
        tenant=record.tenant,
        min_role=Role.MANAGER,
        refusal="Only this tenant's managers and admins may resolve its attempts.",
    )
    if record.kind != AuditKind.TRUNK_CREATE or record.status != AuditStatus.UNKNOWN:
        raise InvalidInput("Only a trunk attempt whose outcome is unknown can be resolved.")
    username = (username or "").strip().upper() if created else ""
    if created and not username_is_valid(username):
        raise InvalidInput(USERNAME_INVALID, field="username")
    trunk_id = (trunk_id or "").strip().lower() if created else ""
    if trunk_id:
        try:
            trunk_id = str(uuid.UUID(trunk_id))
        except ValueError:
            raise InvalidInput(
                "Enter the trunk's id as Crazytel shows it (a UUID such as "
                "3fa85f64-5717-4562-b3fc-2c963f66afa6), or leave it empty.",
                field="trunk_id",
            ) from None
    note = (note or "").replace("\x00", "").strip()
    if not note:
        raise InvalidInput(
            "Say how you checked (e.g. “seen in the Crazytel account on 3 Dec”).", field="note"
        )
    if len(note) > RESOLUTION_NOTE_MAX:
        raise InvalidInput(
            f"Keep the note to {RESOLUTION_NOTE_MAX} characters at most.", field="note"
        )
    with transaction.atomic():
        # The tenant row lock queues two resolvers one behind the other, so the second sees the
        # first's resolution and is refused. (Sealing takes no lock: trunks.audit.writer.)
        Tenant.objects.select_for_update().only("id").get(pk=record.tenant_id)
        earlier = audit_resolution_of(record=record)
        if earlier is not None:
            outcome = (
                f"created ({earlier.trunk_username})"
                if earlier.data.get("created")
                else "not created"
            )
            who = earlier.actor_username or "someone"
            raise Conflict(
                f"This attempt was already resolved as {outcome} by {who} on "
                f"{timezone.localtime(earlier.started_at):%d %b %Y %H:%M}. "
                "A resolution is final; it cannot be changed."
            )
        resolution = audit_event_record(
            kind=AuditKind.OUTCOME_RESOLVED,
            tenant=record.tenant,
            actor=audit_actor(actor),
            request=request,
            data={
                "attempt": str(record.uuid),
                "created": bool(created),
                "trunk_username": username,
                **({"trunk_id": trunk_id} if trunk_id else {}),
                "note": note,
            },
            related=record,
            trunk_username=username,
        )
        if created:
            # The trunk exists after all: the portal's record of it (its id when given).
            trunk_record_from_attempt(
                attempt=record, username=username, trunk_id=trunk_id, at=resolution.started_at
            )
        return resolution
