"""Roles and who may do what: the tenants a person sees, their role there, and the checks services
make before acting. Superusers (portal-wide administrators) hold every role in every tenant;
management commands act as COMMAND_LINE: whoever can run manage.py already owns the database."""

from dataclasses import dataclass
from functools import cache

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import Http404

from .audit.cache import TENANTS, audit_cache_generation_bump, audit_cached
from .errors import NotPermitted
from .models import Membership, Role, Tenant, Trunk
from .reads import CompiledRead

User = AbstractBaseUser | AnonymousUser


class _CommandLine:
    """The actor of management commands (recorded in the audit log as "command line")."""

    is_authenticated = False
    is_superuser = True
    pk = None

    def get_username(self) -> str:
        return ""

    def __str__(self) -> str:
        return "command line"


COMMAND_LINE = _CommandLine()


def is_superuser(actor) -> bool:
    return actor is COMMAND_LINE or bool(
        getattr(actor, "is_authenticated", False) and getattr(actor, "is_superuser", False)
    )


def audit_actor(actor):
    """The user an audit record names (none for the command line)."""
    return None if actor is COMMAND_LINE else actor


def audit_via(actor) -> dict:
    """Extra audit data saying how the action came (the command line), or nothing."""
    return {"via": "command line"} if actor is COMMAND_LINE else {}


def tenant_list_for(*, user: User, min_role: Role = Role.STAFF) -> QuerySet[Tenant]:
    """Tenants in which `user` holds `min_role` or a higher one. Superusers hold every role."""
    if not user.is_authenticated:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(
        memberships__user=user, memberships__role__in=Role.at_least(min_role)
    ).distinct()


def tenant_get_for(*, user: User, slug: str, min_role: Role = Role.STAFF) -> Tenant:
    """The tenant `slug` if `user` may act on it at `min_role`; 404 otherwise (no existence leak)."""
    try:
        return tenant_list_for(user=user, min_role=min_role).get(slug=slug)
    except Tenant.DoesNotExist:
        raise Http404("No such tenant.") from None


def role_in(*, user: User, tenant: Tenant) -> Role | None:
    """The user's role in `tenant` (superusers are admins everywhere), or None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    membership = Membership.objects.filter(user=user, tenant=tenant).only("role").first()
    return Role(membership.role) if membership else None


def user_has_role(*, user: User, min_role: Role) -> bool:
    """Whether `user` holds `min_role` (or higher) in at least one tenant."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role__in=Role.at_least(min_role)).exists()


@dataclass(frozen=True)
class TenantAccess:
    """A tenant as a reader's menus and filters need it, with the reader's role there."""

    id: int
    name: str
    slug: str
    role: str


def user_tenant_access(*, user: User) -> list[TenantAccess]:
    """Every tenant `user` belongs to (every tenant, as admin, for superusers), by name.

    One query, kept on the user object for the rest of the request (like Django's permission
    cache), so the menu, the permission check, the scope and the filter choices share it."""
    if not user.is_authenticated:
        return []
    cached = getattr(user, "_portal_tenant_access", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        access = [TenantAccess(pk, name, slug, Role.ADMIN) for pk, name, slug in tenants_all()]
    else:
        access = [TenantAccess(*row) for row in _MEMBERSHIPS.rows(user.pk)]
    user._portal_tenant_access = access
    return access


# The reader's memberships, by tenant name: on every signed-in page (the menu), compiled once.
_MEMBERSHIPS = CompiledRead(
    lambda user_id: (
        Membership.objects.filter(user_id=user_id)
        .order_by("tenant__name")
        .values_list("tenant_id", "tenant__name", "tenant__slug", "role")
    ),
    arguments=1,
)


def tenants_all() -> list[tuple[int, str, str]]:
    """(id, name, slug) of every tenant, by name: what a superuser's menus list. Shared through
    the cache (a query on every page of a superuser's, issue 17's profile) and dropped when any
    tenant is saved or deleted (_tenants_changed), so it is never older than the last commit."""
    return audit_cached(
        ("tenants",),
        lambda: list(Tenant.objects.order_by("name").values_list("id", "name", "slug")),
        generation=TENANTS,
    )


@receiver(post_save, sender=Tenant, dispatch_uid="access.tenant_saved")
@receiver(post_delete, sender=Tenant, dispatch_uid="access.tenant_deleted")
def _tenants_changed(sender, **kwargs) -> None:
    # Every write of a tenant row goes through save() or delete() (admin, services, commands):
    # none renames one with QuerySet.update().
    audit_cache_generation_bump(TENANTS)


def user_tenants_loaded(*, user: User) -> list[Tenant]:
    """The tenants `user` may act in (tenant_list_for's, as whole rows, by name) in one query that
    also answers user_tenant_access for the rest of the request: a page that needs both the
    tenants and the menu's roles reads them once."""
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        tenants = [_tenant_from_row(row) for row in _TENANTS_ALL.rows()]
        access = [TenantAccess(t.pk, t.name, t.slug, Role.ADMIN) for t in tenants]
    else:
        rows = _TENANTS_WITH_ROLE.rows(user.pk)
        tenants_roles = [(_tenant_from_row(row[:-1]), row[-1]) for row in rows]
        access = [TenantAccess(t.pk, t.name, t.slug, role) for t, role in tenants_roles]
        allowed = set(Role.at_least(Role.STAFF))
        tenants = [t for t, role in tenants_roles if role in allowed]
    if getattr(user, "_portal_tenant_access", None) is None:
        user._portal_tenant_access = access
    return tenants


@cache
def _tenant_fields() -> tuple[str, ...]:
    """The Tenant's columns in model order (what from_db() takes), worked out once per process."""
    return tuple(f.attname for f in Tenant._meta.concrete_fields)


def _tenant_from_row(row) -> Tenant:
    return Tenant.from_db("default", _tenant_fields(), row)


# Whole tenant rows, by name: every tenant's (superusers) or the reader's, with the reader's role
# last (a user holds one membership per tenant, so one row per tenant). On the form's page and
# every create, compiled once.
_TENANTS_ALL = CompiledRead(
    lambda: Tenant.objects.order_by("name").values_list(*_tenant_fields()), arguments=0
)
_TENANTS_WITH_ROLE = CompiledRead(
    lambda user_id: (
        Membership.objects.filter(user_id=user_id)
        .order_by("tenant__name")
        .values_list(*(f"tenant__{name}" for name in _tenant_fields()), "role")
    ),
    arguments=1,
)


def user_tenants_at_least(*, user: User, min_role: Role) -> list[TenantAccess]:
    """The tenants where `user` holds `min_role` or higher, by name (from user_tenant_access)."""
    allowed = set(Role.at_least(min_role))
    return [a for a in user_tenant_access(user=user) if a.role in allowed]


def user_best_role(*, user: User) -> Role | None:
    """The highest role `user` holds in any tenant (admin for superusers), or None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return Role.best(a.role for a in user_tenant_access(user=user))


def require_superuser(actor, *, action: str) -> None:
    if not is_superuser(actor):
        raise NotPermitted(f"Only portal administrators may {action}.")


def require_role(actor, *, tenant: Tenant, min_role: Role, refusal: str) -> None:
    """The actor holds `min_role` or higher in `tenant` (superusers always); NotPermitted otherwise."""
    if is_superuser(actor):
        return
    role = role_in(user=actor, tenant=tenant)
    if role is None or not role.includes(min_role):
        raise NotPermitted(refusal)


def require_tenant_admin(actor, *, tenant: Tenant) -> None:
    require_role(
        actor, tenant=tenant, min_role=Role.ADMIN, refusal="You do not administer this tenant."
    )


def trunk_may_change(*, user: User, trunk: Trunk) -> bool:
    """Whether `user` may act on `trunk`: its tenant's managers and admins, the staff member who
    created it, superusers (and the command line)."""
    if is_superuser(user):
        return True
    role = role_in(user=user, tenant=trunk.tenant)
    if role is None:
        return False
    return role.includes(Role.MANAGER) or (
        trunk.created_by_id is not None and trunk.created_by_id == user.pk
    )


def require_trunk_change(actor, *, trunk: Trunk) -> None:
    if not trunk_may_change(user=actor, trunk=trunk):
        raise NotPermitted(
            "Only the person who created this trunk, and its tenant's managers and admins, may "
            "change it."
        )
