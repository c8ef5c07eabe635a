"""Invitations: a tenant admin asks a person they do not already manage to join a tenant; the person
with that username accepts or declines when they next sign in. Nobody joins a tenant unasked."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from trunks.access import audit_actor, audit_via
from trunks.audit.writer import audit_event_record
from trunks.errors import NotFound
from trunks.models import AuditKind, Invitation, Membership, Role, Tenant

# An invitation not answered within this long lapses (a username created later does not inherit it).
INVITATION_MAX_AGE = timedelta(days=14)


def invitation_create(
    *, actor, tenant: Tenant, username: str, role: Role, request: HttpRequest | None = None
) -> Invitation:
    """Invite `username` to `tenant` as `role` (a repeat refreshes the role and the date).

    The caller has checked the actor administers the tenant. Whether anyone has that username is
    neither checked nor recorded: the answer must not tell.
    """
    with transaction.atomic():
        invitation, _ = Invitation.objects.update_or_create(
            tenant=tenant,
            username=username,
            defaults={
                "role": role.value,
                "invited_by": audit_actor(actor),
                "created_at": timezone.now(),
            },
        )
        audit_event_record(
            kind=AuditKind.MEMBER_INVITED,
            tenant=tenant,
            actor=audit_actor(actor),
            request=request,
            data={"username": username, "role": role.value, **audit_via(actor)},
        )
    return invitation


def invitations_pending_for(*, user) -> QuerySet[Invitation]:
    """The invitations waiting for `user` (by username), newest first."""
    if not getattr(user, "is_authenticated", False):
        return Invitation.objects.none()
    return Invitation.objects.filter(
        username=user.get_username(), created_at__gte=timezone.now() - INVITATION_MAX_AGE
    ).select_related("tenant", "invited_by")


def invitations_pending_for_tenant(*, tenant: Tenant) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        tenant=tenant, created_at__gte=timezone.now() - INVITATION_MAX_AGE
    ).order_by("username")


def invitation_withdraw(
    *, actor, tenant: Tenant, invitation_id: int, request: HttpRequest | None = None
) -> Invitation:
    """Take back an open invitation to `tenant` before it is answered (the caller has checked the
    actor administers the tenant)."""
    with transaction.atomic():
        try:
            invitation = (
                invitations_pending_for_tenant(tenant=tenant)
                .select_for_update()
                .get(pk=invitation_id)
            )
        except Invitation.DoesNotExist:
            raise NotFound("That invitation is no longer open.") from None
        invitation.delete()
        audit_event_record(
            kind=AuditKind.INVITATION_WITHDRAWN,
            tenant=tenant,
            actor=audit_actor(actor),
            request=request,
            data={"username": invitation.username, "role": invitation.role, **audit_via(actor)},
        )
    return invitation


def _pending(*, user, invitation_id: int) -> Invitation:
    try:
        return (
            invitations_pending_for(user=user).select_for_update(of=("self",)).get(pk=invitation_id)
        )
    except Invitation.DoesNotExist:
        raise NotFound("That invitation is no longer open.") from None


def invitation_accept(
    *, user, invitation_id: int, request: HttpRequest | None = None
) -> Membership:
    """`user` joins the invitation's tenant with its role (or keeps the role they already hold)."""
    with transaction.atomic():
        invitation = _pending(user=user, invitation_id=invitation_id)
        tenant, role = invitation.tenant, invitation.role
        invitation.delete()
        try:
            with transaction.atomic():
                membership = Membership.objects.create(user=user, tenant=tenant, role=role)
        except IntegrityError:
            membership = Membership.objects.get(user=user, tenant=tenant)
        audit_event_record(
            kind=AuditKind.INVITATION_ACCEPTED,
            tenant=tenant,
            actor=user,
            request=request,
            data={"username": user.get_username(), "role": membership.role},
        )
    return membership


def invitation_decline(*, user, invitation_id: int, request: HttpRequest | None = None) -> Tenant:
    with transaction.atomic():
        invitation = _pending(user=user, invitation_id=invitation_id)
        tenant = invitation.tenant
        invitation.delete()
        audit_event_record(
            kind=AuditKind.INVITATION_DECLINED,
            tenant=tenant,
            actor=user,
            request=request,
            data={"username": user.get_username(), "role": invitation.role},
        )
    return tenant
