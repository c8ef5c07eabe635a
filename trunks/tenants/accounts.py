"""People's accounts as a tenant admin touches them: a password someone else chose (which its owner
must replace at the next login), a reset by an admin, and unlocking a member the login throttle
locked out. The forced change itself is portal.password_change."""

import secrets

from axes.utils import reset as axes_reset
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from portal.throttle import login_throttle_reset
from trunks.access import audit_actor, audit_via, is_superuser, require_tenant_admin
from trunks.audit.writer import audit_event_record
from trunks.errors import InvalidInput, NotFound, NotPermitted
from trunks.models import AuditKind, Membership, PasswordChangeRequired, Role, Tenant


def first_login_password_generate() -> str:
    """A password chosen for someone (who must replace it at their first login): 20 url-safe random characters, shown once."""
    return secrets.token_urlsafe(15)


def password_change_require(*, user) -> None:
    """Someone other than `user` chose their password: they must set their own at the next login."""
    PasswordChangeRequired.objects.get_or_create(user=user)


def password_change_clear(*, user) -> None:
    """`user` chose their own password."""
    PasswordChangeRequired.objects.filter(user=user).delete()


def password_change_is_required(*, user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return PasswordChangeRequired.objects.filter(user=user).exists()


@sensitive_variables("password")
def user_password_set(*, user, password: str, chosen_by_owner: bool = False) -> None:
    """Set a user's password after checking it against the password rules (command line).

    Unless its owner chose it, they must replace it at their next login.
    """
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from None
    user.set_password(password)
    user.save(update_fields=["password"])
    if chosen_by_owner:
        password_change_clear(user=user)
    else:
        password_change_require(user=user)


def _member(*, tenant: Tenant, membership_id: int) -> Membership:
    try:
        return Membership.objects.select_related("user").get(pk=membership_id, tenant=tenant)
    except Membership.DoesNotExist:
        raise NotFound("No such member in this tenant.") from None


def _require_may_manage_account(actor, *, membership: Membership) -> None:
    """A tenant admin may reset the password of a person whose every tenant they administer; never
    a portal administrator's, nor their own here. Otherwise an admin of one small tenant could take
    over an account that acts for other tenants (or for the whole portal)."""
    user = membership.user
    if is_superuser(actor):
        return
    if user.pk == getattr(actor, "pk", None):
        raise NotPermitted("Change your own password from the “Password” link in the header.")
    if user.is_superuser or user.is_staff:
        raise NotPermitted(
            "Only portal administrators may reset a portal administrator's password."
        )
    administered = Membership.objects.filter(user=actor, role=Role.ADMIN).values("tenant_id")
    if Membership.objects.filter(user=user).exclude(tenant_id__in=administered).exists():
        raise NotPermitted(
            f"{user.get_username()} also belongs to a tenant you do not administer: ask a portal "
            "administrator to reset their password."
        )


@sensitive_variables("password")
def member_password_reset(
    *, actor, tenant: Tenant, membership_id: int, request: HttpRequest | None = None
) -> tuple[Membership, str]:
    """Give a member a new random password (returned for showing once); they must replace it at
    their next login. Changing the password also ends their other sessions (Django's session hash)."""
    require_tenant_admin(actor, tenant=tenant)
    with transaction.atomic():
        membership = _member(tenant=tenant, membership_id=membership_id)
        _require_may_manage_account(actor, membership=membership)
        user = membership.user
        password = first_login_password_generate()
        user.set_password(password)
        user.save(update_fields=["password"])
        password_change_require(user=user)
        audit_event_record(
            kind=AuditKind.MEMBER_PASSWORD_RESET,
            tenant=tenant,
            actor=audit_actor(actor),
            request=request,
            data={"username": user.get_username(), **audit_via(actor)},
        )
    return membership, password


def member_unlock(
    *, actor, tenant: Tenant, membership_id: int, request: HttpRequest | None = None
) -> int:
    """Clear the login throttle's failures for a member's username (django-axes' username+address
    locks and the portal's per-username limit). Returns how many records were cleared."""
    require_tenant_admin(actor, tenant=tenant)
    membership = _member(tenant=tenant, membership_id=membership_id)
    username = membership.user.get_username()
    cleared = axes_reset(username=username) + login_throttle_reset(username=username)
    audit_event_record(
        kind=AuditKind.MEMBER_UNLOCKED,
        tenant=tenant,
        actor=audit_actor(actor),
        request=request,
        data={"username": username, "cleared": cleared, **audit_via(actor)},
    )
    return cleared
