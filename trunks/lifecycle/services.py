"""Changing a trunk the portal made (Crazytel's PATCH /sip-trunks/{id}): only what changed is sent,
once per rendered form (its one-time token, kept in the audit record's unique column), never over a
change made since the form was rendered (the trunk's version), recorded pending before the call and
final once, with every upstream outcome turned into what the trunk's page shows."""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from trunks.access import audit_actor, require_role, require_trunk_change
from trunks.audit.writer import audit_attempt_finish, audit_attempt_start, audit_event_record
from trunks.crazytel import errors as upstream
from trunks.crazytel.contract import TRUNK_FIELD_NAMES
from trunks.crazytel.parsing import redact
from trunks.errors import Conflict, InvalidInput
from trunks.models import AuditKind, AuditRecord, AuditStatus, Role, Trunk, TrunkState
from trunks.provisioning.messages import (
    MESSAGE_CHANGE_UNKNOWN,
    MESSAGE_CREDENTIALS,
    MESSAGE_TRUNK_MISSING,
    TrunkError,
)
from trunks.provisioning.outcomes import CHANGE, upstream_failure
from trunks.tenants.credentials import CredentialError
from trunks.tenants.upstream import crazytel_client_for

from .records import SETTING_NAMES, trunk_settings, trunk_settings_of

logger = logging.getLogger(__name__)

CHANGE_KINDS = (
    AuditKind.TRUNK_UPDATED,
    AuditKind.TRUNK_SUSPENDED,
    AuditKind.TRUNK_ENABLED,
    AuditKind.TRUNK_PASSWORD_CHANGED,
)
# What a change record's data says instead of a password (never its value).
PASSWORD_CHANGED = "password_changed"
MESSAGE_NOTHING_CHANGED = "Nothing changed, so nothing was sent to Crazytel."


@dataclass
class TrunkChangeResult:
    """What became of one change. `password` is set only on the response that changed it, to show
    it once; it is never stored anywhere."""

    trunk: Trunk
    status: str
    message: str = ""
    record: AuditRecord | None = None
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    category: str = ""
    retry_after: int | None = None
    password: str = field(default="", repr=False)
    duplicate: bool = False
    # A conflict: the changes made in the portal since the form was rendered (newest first).
    changed_since: list[AuditRecord] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == AuditStatus.SUCCEEDED

    @property
    def unknown(self) -> bool:
        return self.status == AuditStatus.UNKNOWN

    @property
    def conflict(self) -> bool:
        return self.status == "conflict"

    @property
    def nothing(self) -> bool:
        return self.status == "nothing"


def change_kind(changes: dict[str, Any]) -> AuditKind:
    """The audit kind of a change: a suspension or enabling alone, a password alone, or settings."""
    names = set(changes)
    if names == {"enabled"}:
        return AuditKind.TRUNK_ENABLED if changes["enabled"] else AuditKind.TRUNK_SUSPENDED
    if names == {"password"}:
        return AuditKind.TRUNK_PASSWORD_CHANGED
    return AuditKind.TRUNK_UPDATED


def trunk_changes_since(*, trunk: Trunk, version: int) -> list[AuditRecord]:
    """The confirmed changes to `trunk` after `version` (newest first), for a conflict."""
    return list(
        AuditRecord.objects.filter(
            tenant_id=trunk.tenant_id,
            trunk_username=trunk.username,
            kind__in=(*CHANGE_KINDS, AuditKind.OUTCOME_RESOLVED),
            status=AuditStatus.SUCCEEDED,
            data__version__gt=version,
        ).order_by("-started_at", "-id")
    )


def _result_of(record: AuditRecord, trunk: Trunk) -> TrunkChangeResult:
    """The result recorded for an earlier submission of the same form (found by its token)."""
    message = record.error_message
    if record.status == AuditStatus.PENDING:
        message = (
            "This change was already sent and Crazytel's answer is still awaited; reload soon."
        )
    elif record.status == AuditStatus.SUCCEEDED:
        message = "This change was already sent and applied (shown once, on that submission)."
    return TrunkChangeResult(
        trunk=trunk,
        status=record.status,
        message=message,
        record=record,
        category=record.error_category,
        duplicate=True,
    )


@sensitive_variables("wanted", "password", "payload")
def trunk_change(
    *,
    actor,
    trunk: Trunk,
    wanted: dict[str, Any],
    version: int,
    submission_token: str,
    request: HttpRequest | None = None,
    send_again: bool = False,
) -> TrunkChangeResult:
    """Change `trunk` to the values in `wanted` (any documented field, `password` included):
    only the fields that differ from the trunk as last known are sent.

    `version` is the trunk's version when the form was rendered: a change made since is a
    conflict, and nothing is sent. `send_again` re-sends an unconfirmed change's requested settings
    (harmless when they applied). Raises NotPermitted, TrunkError (nothing recorded or sent).
    """
    require_trunk_change(actor, trunk=trunk)
    readiness = trunk.tenant.readiness
    if not readiness:
        raise TrunkError(readiness.reason)
    if not trunk.trunk_id:
        raise TrunkError(
            "The portal does not know this trunk's Crazytel id (its create answer did not carry "
            "one), so it cannot be changed from here. Change it in Crazytel's own portal."
        )
    wanted = {k: v for k, v in wanted.items() if k in TRUNK_FIELD_NAMES}
    password = wanted.pop("password", "") or ""

    with transaction.atomic():
        locked = Trunk.objects.select_for_update().get(pk=trunk.pk)
        earlier = AuditRecord.objects.filter(submission_token=submission_token).first()
        if earlier is not None:
            return _result_of(earlier, locked)
        if locked.state == TrunkState.MISSING:
            raise TrunkError(MESSAGE_TRUNK_MISSING)
        if locked.version != version:
            return TrunkChangeResult(
                trunk=locked,
                status="conflict",
                message="This trunk was changed in the portal after this page was shown, so "
                "nothing was sent. Review its settings now and submit again.",
                changed_since=trunk_changes_since(trunk=locked, version=version),
            )
        pending = locked.change_record
        if pending is not None and pending.status == AuditStatus.PENDING:
            raise TrunkError(
                "Another change to this trunk is being sent right now; reload in a moment."
            )
        before = trunk_settings(locked)
        wanted = trunk_settings_of(wanted)
        changes = {k: v for k, v in wanted.items() if before.get(k) != v}
        requested = (locked.requested or {}) if locked.state == TrunkState.UNCONFIRMED else {}
        if send_again:
            # Sending the same values again is harmless; a password needs typing again.
            changes = dict(requested.get("settings") or {}) | changes
        if not changes and not password:
            return TrunkChangeResult(
                trunk=locked, status="nothing", message=MESSAGE_NOTHING_CHANGED
            )

        payload = dict(changes)
        if password:
            payload["password"] = password
        recorded_changes: dict[str, Any] = {k: [before.get(k), v] for k, v in changes.items()}
        record = audit_attempt_start(
            kind=change_kind(payload),
            tenant=locked.tenant,
            actor=actor,
            request=request,
            data={
                "trunk": locked.username,
                # The version this change makes when it is confirmed (for conflicts).
                "version": locked.version + 1,
                "changes": recorded_changes,
                # A password change is recorded as such, never with a value.
                **({"password_changed": True} if password else {}),
                **({"send_again_of": str(pending.uuid)} if send_again and pending else {}),
            },
            submission_token=submission_token,
            trunk_username=locked.username,
            trunk_id=locked.trunk_id,
        )
        locked.change_record = record
        locked.save(update_fields=["change_record"])

    try:
        return _trunk_change_call(
            trunk=locked, record=record, payload=payload, password=password, actor=actor
        )
    except BaseException:
        logger.exception("trunk_change failed unexpectedly (attempt %s)", record.uuid)
        if AuditRecord.objects.filter(pk=record.pk, status=AuditStatus.PENDING).exists():
            _finish(
                trunk=locked,
                record=record,
                payload=payload,
                status=AuditStatus.UNKNOWN,
                category="internal",
                message=MESSAGE_CHANGE_UNKNOWN,
            )
        raise


@sensitive_variables("payload", "password")
def _trunk_change_call(*, trunk, record, payload, password, actor) -> TrunkChangeResult:
    try:
        updated = crazytel_client_for(trunk.tenant).update_sip_trunk(trunk.trunk_id, payload)
    except CredentialError:
        final = _finish(
            trunk=trunk,
            record=record,
            payload=payload,
            status=AuditStatus.FAILED,
            category="credentials",
            message=MESSAGE_CREDENTIALS,
        )
        return TrunkChangeResult(
            trunk=final[1], status=AuditStatus.FAILED, message=MESSAGE_CREDENTIALS, record=final[0]
        )
    except upstream.CrazytelError as error:
        return _trunk_change_failure(trunk=trunk, record=record, payload=payload, error=error)

    answered = dict(updated.settings or {})
    response = redact(updated.response, (password,)) if password else updated.response
    final, fresh = _finish(
        trunk=trunk,
        record=record,
        payload=payload,
        status=AuditStatus.SUCCEEDED,
        upstream_status=200,
        response=response,
        answered=answered,
        actor=actor,
    )
    return TrunkChangeResult(
        trunk=fresh, status=AuditStatus.SUCCEEDED, record=final, password=password
    )


def _trunk_change_failure(*, trunk, record, payload, error) -> TrunkChangeResult:
    """Record one upstream error as the change's outcome and say it on the trunk's page."""
    failure = upstream_failure(error, attempt=CHANGE, tenant=trunk.tenant, payload=payload)
    final, fresh = _finish(
        trunk=trunk,
        record=record,
        payload=payload,
        status=failure.status,
        category=error.category,
        message=failure.recorded_message,
        upstream_status=error.status,
        missing=failure.missing,
    )
    return TrunkChangeResult(
        trunk=fresh,
        status=failure.status,
        message=failure.message,
        record=final,
        field_errors=failure.field_errors,
        category=error.category,
        retry_after=failure.retry_after,
    )


def _finish(
    *,
    trunk: Trunk,
    record: AuditRecord,
    payload: dict[str, Any],
    status: AuditStatus,
    category: str = "",
    message: str = "",
    upstream_status: int | None = None,
    response: dict | None = None,
    answered: dict | None = None,
    actor=None,
    missing: bool = False,
) -> tuple[AuditRecord, Trunk]:
    """Finalise the change record and the trunk together, in one transaction."""
    with transaction.atomic():
        locked = Trunk.objects.select_for_update().get(pk=trunk.pk)
        final = audit_attempt_finish(
            record=record,
            status=status,
            upstream_status=upstream_status,
            error_category=category,
            error_message=message,
            trunk_username=trunk.username,
            trunk_id=trunk.trunk_id,
            response=response,
        )
        settings_sent = {k: v for k, v in payload.items() if k in SETTING_NAMES}
        fields = ["change_record"]
        locked.change_record = None
        if status == AuditStatus.SUCCEEDED:
            # Crazytel's answer says what the trunk now is; an empty answer means what was sent.
            _apply(
                locked,
                settings_sent | (answered or {}),
                actor=actor,
                password="password" in payload,
            )
            fields = None
        elif status == AuditStatus.UNKNOWN:
            requested = (
                dict(locked.requested or {}) if locked.state == TrunkState.UNCONFIRMED else {}
            )
            locked.requested = {
                "settings": dict(requested.get("settings") or {}) | settings_sent,
                "password": bool(requested.get("password")) or "password" in payload,
            }
            locked.state = TrunkState.UNCONFIRMED
            locked.change_record = final
            fields += ["requested", "state"]
        elif missing:
            locked.state = TrunkState.MISSING
            fields += ["state"]
        locked.save(update_fields=fields)
    return final, locked


def _apply(trunk: Trunk, settings: dict[str, Any], *, actor, password: bool) -> None:
    """Make `settings` the trunk's known settings, confirmed: a new version."""
    for name, value in trunk_settings_of(settings).items():
        setattr(trunk, name, value)
    now = timezone.now()
    trunk.state = TrunkState.CONFIRMED
    trunk.requested = None
    trunk.version += 1
    trunk.updated_at = now
    actor = audit_actor(actor)
    trunk.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    trunk.updated_by_username = actor.get_username() if trunk.updated_by else ""
    if password:
        trunk.password_changed_at = now


def trunk_change_resolve(
    *, actor, trunk: Trunk, applied: bool, note: str, request: HttpRequest | None = None
) -> AuditRecord:
    """A manager records what became of an unconfirmed change (seen in Crazytel's portal): applied
    (the requested settings become the trunk's) or not applied (the last confirmed stay). A new
    OUTCOME_RESOLVED event points at the change's record; the log stays append-only."""
    require_role(
        actor,
        tenant=trunk.tenant,
        min_role=Role.MANAGER,
        refusal="Only this tenant's managers and admins may resolve an unconfirmed change.",
    )
    note = (note or "").replace("\x00", "").strip()
    if not note:
        raise InvalidInput(
            "Say how you checked (e.g. “seen in the Crazytel portal”).", field="note"
        )
    with transaction.atomic():
        locked = Trunk.objects.select_for_update().get(pk=trunk.pk)
        if locked.state != TrunkState.UNCONFIRMED or locked.change_record is None:
            raise Conflict("This trunk has no unconfirmed change to resolve (someone resolved it).")
        requested = locked.requested or {}
        if applied:
            _apply(
                locked,
                requested.get("settings") or {},
                actor=actor,
                password=bool(requested.get("password")),
            )
        else:
            locked.state = TrunkState.CONFIRMED
            locked.requested = None
        attempt = locked.change_record
        locked.change_record = None
        locked.save()
        return audit_event_record(
            kind=AuditKind.OUTCOME_RESOLVED,
            tenant=locked.tenant,
            actor=audit_actor(actor),
            request=request,
            data={
                "attempt": str(attempt.uuid),
                "applied": bool(applied),
                "trunk": locked.username,
                "version": locked.version,
                "note": note[:1000],
            },
            related=attempt,
            trunk_username=locked.username,
        )
