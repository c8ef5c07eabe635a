"""Reads about trunk attempts for the person making them: by form token, by uuid, the unknown ones."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from trunks.access import User, tenant_list_for
from trunks.audit.cache import audit_cached
from trunks.audit.selectors import audit_unknown_handled
from trunks.models import AuditKind, AuditRecord, AuditStatus, Tenant

from .tokens import submission_token_nonce


def trunk_attempt_for_token(*, user: User, token: str) -> AuditRecord | None:
    """The attempt a form submission with `token` already made, if it was this user's."""
    if not user.is_authenticated or not token:
        return None
    return (
        AuditRecord.objects.filter(kind=AuditKind.TRUNK_CREATE, submission_token=token, actor=user)
        .select_related("tenant")
        .first()
    )


def trunk_attempt_for_submission(*, user: User, token: str) -> AuditRecord | None:
    """The attempt an earlier POST of the same form rendering (`token`) made, if any."""
    if not user.is_authenticated:
        return None
    nonce = submission_token_nonce(user=user, token=token)
    return trunk_attempt_for_token(user=user, token=nonce) if nonce else None


def trunk_attempt_get_for(*, user: User, uuid) -> AuditRecord | None:
    """One of `user`'s own trunk attempts, in a tenant they still belong to; None otherwise."""
    record = (
        AuditRecord.objects.filter(kind=AuditKind.TRUNK_CREATE, uuid=uuid, actor=user)
        .select_related("tenant")
        .first()
    )
    if record is None or record.tenant not in tenant_list_for(user=user):
        return None
    return record


def trunk_attempt_unknown_get(*, user: User, tenant: Tenant, uuid: str) -> AuditRecord | None:
    """An attempt of `tenant` whose outcome is unknown, for `user` to retry, or None."""
    if tenant not in tenant_list_for(user=user):
        return None
    try:
        return AuditRecord.objects.filter(
            kind=AuditKind.TRUNK_CREATE, tenant=tenant, status=AuditStatus.UNKNOWN, uuid=uuid
        ).first()
    except ValidationError:
        return None


def trunk_attempts_unknown_recent(*, tenant: Tenant, hours: int = 24, limit: int = 5):
    """`tenant`'s recent attempts whose outcome is unknown and not yet handled (resolved, or
    retried successfully: the audit log's own definition): the form warns about them before a
    similar trunk is created.

    Shared through the audit cache (trunks.audit.cache): the list is read again as soon as any
    audit record is written (the writer bumps the records' generation, and again on commit), so
    a form view between writes costs one cache read instead of the query with its two correlated
    subqueries."""
    since = timezone.now() - timedelta(hours=hours)
    found = audit_cached(
        ("trunk-attempts-unknown-recent", tenant.pk, hours, limit),
        lambda: _unknown_recent(tenant=tenant, since=since, limit=limit),
    )
    # A list read from the cache a moment ago may hold one that is now older than `hours`.
    return [r for r in found if r.started_at >= since]


def _unknown_recent(*, tenant: Tenant, since, limit: int) -> list[AuditRecord]:
    return list(
        AuditRecord.objects.filter(
            kind=AuditKind.TRUNK_CREATE,
            tenant=tenant,
            status=AuditStatus.UNKNOWN,
            started_at__gte=since,
        )
        .exclude(audit_unknown_handled())
        .order_by("-started_at")[:limit]
    )


def trunk_attempts_recent_for(*, user: User, limit: int = 5) -> list[AuditRecord]:
    """`user`'s own latest trunk attempts, in the tenants they still belong to (their home page)."""
    if not user.is_authenticated:
        return []
    return list(
        AuditRecord.objects.filter(
            kind=AuditKind.TRUNK_CREATE, actor=user, tenant__in=tenant_list_for(user=user)
        )
        .select_related("tenant")
        .order_by("-started_at", "-id")[:limit]
    )


def trunk_attempts_unknown_for(*, user: User, limit: int = 10) -> list[AuditRecord]:
    """`user`'s own attempts whose outcome is unknown and that nothing has followed up yet (no
    retry, no resolution), in the tenants they still belong to: what needs their attention."""
    if not user.is_authenticated:
        return []
    return list(
        AuditRecord.objects.filter(
            kind=AuditKind.TRUNK_CREATE,
            actor=user,
            status=AuditStatus.UNKNOWN,
            followups__isnull=True,
            tenant__in=tenant_list_for(user=user),
        )
        .select_related("tenant")
        .order_by("-started_at", "-id")[:limit]
    )
