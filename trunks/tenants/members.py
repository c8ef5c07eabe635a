"""A tenant's members: add (creating the user if asked, or inviting someone the admin does not
already manage), change a role, remove. A tenant always keeps an admin unless a superuser acts."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from trunks.access import audit_actor, audit_via, is_superuser, require_tenant_admin
from trunks.audit.writer import audit_event_record
from trunks.errors import Conflict, InvalidInput, NotFound
from trunks.models import AuditKind, Invitation, Membership, Role, Tenant

from .accounts import first_login_password_generate, password_change_require
from .invitations import invitation_create


@dataclass(frozen=True)
class MemberAdded:
    # None when the person was invited instead (see `invitation`).
    membership: Membership | None
    user_created: bool
    # The new user's password, for showing once; empty when the user existed or chose it.
    password: str = ""
    invitation: Invitation | None = None


def _actor_manages(actor, *, user) -> bool:
    """Whether `user` already belongs to a tenant that `actor` administers: then the admin may
    add them to another of their tenants directly; anyone else is invited."""
    administered = Membership.objects.filter(user=actor, role=Role.ADMIN).values("tenant_id")
    return Membership.objects.filter(user=user, tenant_id__in=administered).exists()


def _username_check(username: str) -> None:
    User = get_user_model()
    try:
        User._meta.get_field(User.USERNAME_FIELD).run_validators(username)
        User(**{User.USERNAME_FIELD: username}).clean_fields(exclude=["password"])
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="username") from None


def _clean_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput("Choose a role: staff, manager or admin.", field="role") from None


@sensitive_variables("password", "shown_password")
def member_add(
    *,
    actor,
    tenant: Tenant,
    username: str,
    role: str,
    create_user: bool = False,
    password: str | None = None,
    password_chosen_by_owner: bool = False,
    request: HttpRequest | None = None,
) -> MemberAdded:
    """Give `username` a role in `tenant`. With create_user, a missing user is created.

    A created user gets `password` (checked against the password rules) or a generated one that the
    caller shows once; either way they must set their own at the next login, unless
    `password_chosen_by_owner`. The password is never stored in clear or recorded.

    A tenant admin adds directly only people who already belong to one of their tenants. Anyone
    else — an account of another tenant, or a username that may not exist at all — gets an
    invitation they accept when they next sign in; both answer the same, so the admin learns
    nothing about usernames elsewhere. Superusers (and the command line) add directly.
    """
    require_tenant_admin(actor, tenant=tenant)
    role = _clean_role(role)
    username = (username or "").strip()
    User = get_user_model()
    if not username:
        raise InvalidInput("Enter a username.", field="username")
    with transaction.atomic():
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        created = False
        shown_password = ""
        superuser = is_superuser(actor)
        if user is None and not create_user and superuser:
            raise NotFound(
                f"There is no user called “{username}”. Tick “create this user” to add one.",
                field="username",
            )
        if (user is None and not create_user) or (
            user is not None
            and not superuser
            and not Membership.objects.filter(user=user, tenant=tenant).exists()
            and not _actor_manages(actor, user=user)
        ):
            _username_check(username)
            invitation = invitation_create(
                actor=actor, tenant=tenant, username=username, role=role, request=request
            )
            return MemberAdded(membership=None, user_created=False, invitation=invitation)
        if user is None:
            _username_check(username)
            user = User(**{User.USERNAME_FIELD: username})
            if password:
                try:
                    validate_password(password, user=user)
                except ValidationError as exc:
                    raise InvalidInput(" ".join(exc.messages), field="password") from None
            else:
                password = shown_password = first_login_password_generate()
            user.set_password(password)
            user.save()
            if not password_chosen_by_owner:
                password_change_require(user=user)
            created = True
        elif Membership.objects.filter(user=user, tenant=tenant).exists():
            raise Conflict(
                f"{user.get_username()} is already a member of {tenant.name}.", field="username"
            )
        membership = Membership.objects.create(user=user, tenant=tenant, role=role)
        audit_event_record(
            kind=AuditKind.MEMBER_ADDED,
            tenant=tenant,
            actor=audit_actor(actor),
            request=request,
            data={
                "username": user.get_username(),
                "role": role.value,
                "user_created": created,
                **audit_via(actor),
            },
        )
    return MemberAdded(membership=membership, user_created=created, password=shown_password)


def _other_admins_exist(*, membership: Membership) -> bool:
    return (
        Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )


def _member_for_update(*, tenant: Tenant, membership_id: int) -> Membership:
    """The member, locked together with the tenant's admins, so that two demotions or removals
    at once cannot both pass the last-admin check. Call inside a transaction."""
    list(
        Membership.objects.select_for_update()
        .filter(tenant=tenant, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    try:
        return (
            Membership.objects.select_for_update()
            .select_related("user", "tenant")
            .get(pk=membership_id, tenant=tenant)
        )
    except Membership.DoesNotExist:
        raise NotFound("No such member in this tenant.") from None


def _refuse_removing_last_admin(*, actor, membership: Membership, field: str | None = None):
    """A tenant admin may not leave the tenant without an admin; a superuser may."""
    if (
        membership.role == Role.ADMIN
        and not is_superuser(actor)
        and not _other_admins_exist(membership=membership)
    ):
        raise Conflict(
            f"{membership.user.get_username()} is this tenant's only admin: make someone else "
            "admin first.",
            field=field,
        )


def member_set_role(
    *,
    actor,
    tenant: Tenant,
    membership_id: int,
    role: str,
    request: HttpRequest | None = None,
) -> Membership:
    """Change a member's role. A tenant admin cannot demote the tenant's last admin."""
    require_tenant_admin(actor, tenant=tenant)
    role = _clean_role(role)
    with transaction.atomic():
        membership = _member_for_update(tenant=tenant, membership_id=membership_id)
        old = membership.role
        if old == role:
            return membership
        _refuse_removing_last_admin(actor=actor, membership=membership, field="role")
        membership.role = role
        membership.save(update_fields=["role"])
        audit_event_record(
            kind=AuditKind.MEMBER_ROLE_CHANGED,
            tenant=tenant,
            actor=audit_actor(actor),
            request=request,
            data={
                "username": membership.user.get_username(),
                "role": [old, role.value],
                **audit_via(actor),
            },
        )
    return membership


def member_remove(
    *,
    actor,
    tenant: Tenant,
    membership_id: int,
    request: HttpRequest | None = None,
) -> None:
    """Remove a member from the tenant (the user account stays). Not the last admin, unless superuser."""
    require_tenant_admin(actor, tenant=tenant)
    with transaction.atomic():
        membership = _member_for_update(tenant=tenant, membership_id=membership_id)
        _refuse_removing_last_admin(actor=actor, membership=membership)
        username, role = membership.user.get_username(), membership.role
        membership.delete()
        audit_event_record(
            kind=AuditKind.MEMBER_REMOVED,
            tenant=tenant,
            actor=audit_actor(actor),
            request=request,
            data={"username": username, "role": role, **audit_via(actor)},
        )
