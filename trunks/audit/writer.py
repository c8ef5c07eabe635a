"""Writing the audit log: attempts (pending → final once) and admin events. Append-only.

Every record joins its tenant's hash chain (trunks.audit.chain) at the moment it becomes final. The
tenant row is locked while a record is sealed, so concurrent writers append one after another.
"""

import copy
import time
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from trunks.models import AuditKind, AuditRecord, AuditStatus, Tenant

from .cache import audit_cache_invalidate
from .chain import record_hash_compute


def request_meta(request: HttpRequest | None) -> dict[str, Any]:
    """Who sent the request, from where: for the audit record."""
    if request is None:
        return {}
    return {
        "client_ip": getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:400],
        "request_id": getattr(request, "request_id", ""),
    }


def _seal(record: AuditRecord) -> None:
    """Give a final record its place in the tenant's chain. Call inside a transaction."""
    Tenant.objects.select_for_update().only("id").get(pk=record.tenant_id)
    last = (
        AuditRecord.objects.filter(tenant_id=record.tenant_id, chain_seq__isnull=False)
        .order_by("-chain_seq")
        .values("chain_seq", "record_hash")
        .first()
    )
    record.chain_seq = (last["chain_seq"] + 1) if last else 1
    record.prev_hash = last["record_hash"] if last else ""
    record.record_hash = record_hash_compute(record)


def _actor_fields(actor) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor": None, "actor_username": ""}
    return {"actor": actor, "actor_username": actor.get_username()}


@transaction.atomic
def audit_event_record(
    *,
    kind: AuditKind,
    tenant: Tenant,
    actor,
    request: HttpRequest | None = None,
    data: dict[str, Any] | None = None,
    related: AuditRecord | None = None,
    status: AuditStatus = AuditStatus.SUCCEEDED,
    error_message: str = "",
    trunk_username: str = "",
) -> AuditRecord:
    """Record an admin event (final at once). `data` must hold no secret.

    `trunk_username` names the trunk an event is about (a resolved unknown outcome), so the log's
    search finds it."""
    now = timezone.now()
    record = AuditRecord(
        kind=kind,
        tenant=tenant,
        tenant_name=tenant.name,
        **_actor_fields(actor),
        **request_meta(request),
        data=data or {},
        status=status,
        error_message=error_message,
        trunk_username=trunk_username,
        related=related,
        started_at=now,
        finished_at=now,
        duration_ms=0,
    )
    _seal(record)
    record.save()
    audit_cache_invalidate()
    return record


def audit_attempt_start(
    *,
    tenant: Tenant,
    actor,
    request: HttpRequest | None,
    data: dict[str, Any],
    submission_token: str | None,
    related: AuditRecord | None = None,
    kind: AuditKind = AuditKind.TRUNK_CREATE,
    trunk_username: str = "",
    trunk_id: str = "",
) -> AuditRecord:
    """Record a trunk attempt (a create, or a change of `trunk_username`) as pending, before
    anything goes upstream.

    Raises IntegrityError when `submission_token` was used already: the caller shows that
    submission's result instead of calling Crazytel again.
    """
    assert "password" not in data, "the password is never recorded"
    record = AuditRecord(
        kind=kind,
        tenant=tenant,
        tenant_name=tenant.name,
        **_actor_fields(actor),
        **request_meta(request),
        data=data,
        trunk_username=trunk_username,
        trunk_id=trunk_id,
        caller_id_number=str(data.get("caller_id_number", ""))[:32],
        description=str(data.get("description", ""))[:255],
        status=AuditStatus.PENDING,
        submission_token=submission_token,
        related=related,
        started_at=timezone.now(),
    )
    record._monotonic_start = time.monotonic()
    with transaction.atomic():
        record.save()
    audit_cache_invalidate()
    return record


@transaction.atomic
def audit_attempt_finish(
    *,
    record: AuditRecord,
    status: AuditStatus,
    upstream_status: int | None = None,
    error_category: str = "",
    error_message: str = "",
    trunk_username: str = "",
    trunk_id: str = "",
    response: dict[str, Any] | None = None,
) -> AuditRecord:
    """Complete a pending attempt, exactly once, and seal it into the chain."""
    assert status != AuditStatus.PENDING
    # Lock the row while it is still pending (exactly once; the same lock order as the pending
    # sweeper: the record, then the tenant). Its content is what `record` holds: a pending row
    # changes only here, so it is not read again.
    locked = (
        AuditRecord.objects.select_for_update()
        .filter(pk=record.pk, status=AuditStatus.PENDING)
        .values_list("pk", flat=True)
    )
    if not list(locked):
        raise ValueError(f"audit record {record.pk} is final already")
    fresh = copy.copy(record)  # the caller's pending record stays as it was
    now = timezone.now()
    fresh.status = status
    fresh.upstream_status = upstream_status
    fresh.error_category = error_category
    fresh.error_message = error_message
    fresh.trunk_username = trunk_username
    fresh.trunk_id = trunk_id
    fresh.response = response
    fresh.finished_at = now
    elapsed_ms = int((now - fresh.started_at).total_seconds() * 1000)
    fresh.duration_ms = min(max(0, elapsed_ms), DURATION_MS_MAX)
    _seal(fresh)
    fresh.save(update_fields=FINISH_FIELDS)
    audit_cache_invalidate()
    return fresh


# The column's ceiling (a 32-bit integer: 24.8 days); an attempt found pending longer gets it.
DURATION_MS_MAX = 2**31 - 1

# What finishing an attempt writes (the rest of a pending row is as audit_attempt_start wrote it).
FINISH_FIELDS = [
    "status",
    "upstream_status",
    "error_category",
    "error_message",
    "trunk_username",
    "trunk_id",
    "response",
    "finished_at",
    "duration_ms",
    "chain_seq",
    "prev_hash",
    "record_hash",
]
