"""Reads, each scoped to the tenants the actor may see. Writes live in trunks.services."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Case, Count, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404

from .models import ROLE_RANK, Membership, Role, Tenant

User = AbstractBaseUser | AnonymousUser


def _roles_at_least(min_role: Role) -> list[str]:
    return [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[min_role]]


def tenant_list_for(*, user: User, min_role: Role = Role.STAFF) -> QuerySet[Tenant]:
    """Tenants in which `user` holds `min_role` or a higher one. Superusers hold every role."""
    if not user.is_authenticated:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(
        memberships__user=user, memberships__role__in=_roles_at_least(min_role)
    ).distinct()


def tenant_get_for(*, user: User, slug: str, min_role: Role = Role.STAFF) -> Tenant:
    """The tenant `slug` if `user` may act on it at `min_role`; 404 otherwise (no existence leak)."""
    try:
        return tenant_list_for(user=user, min_role=min_role).get(slug=slug)
    except Tenant.DoesNotExist:
        raise Http404("No such tenant.") from None


def role_in(*, user: User, tenant: Tenant) -> str | None:
    """The user's role in `tenant` (superusers are admins everywhere), or None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    membership = Membership.objects.filter(user=user, tenant=tenant).only("role").first()
    return membership.role if membership else None


def user_has_role(*, user: User, min_role: Role) -> bool:
    """Whether `user` holds `min_role` (or higher) in at least one tenant."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role__in=_roles_at_least(min_role)).exists()


# --- Tenants and members (issue 4) ---------------------------------------------------------------


@dataclass(frozen=True)
class TenantReadiness:
    """Whether staff may create trunks for a tenant now, and if not, why (for a person to read)."""

    ready: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ready

    def __iter__(self):
        # `ready, reason = tenant_ready_for_trunks(tenant)` reads naturally too.
        return iter((self.ready, self.reason))


def tenant_ready_for_trunks(tenant: Tenant) -> TenantReadiness:
    """Can trunks be created for `tenant`? Inactive tenants and tenants without a key cannot.

    A failing connection does not block the form (a new attempt tells staff what Crazytel says),
    but its reason is given so the page can warn.
    """
    if not tenant.is_active:
        return TenantReadiness(
            False,
            f"{tenant.name} is deactivated, so no trunks can be created for it. "
            "Ask one of its admins to activate it again.",
        )
    if not tenant.has_api_key:
        return TenantReadiness(
            False,
            f"{tenant.name} has no Crazytel API key yet, so no trunks can be created for it. "
            "Ask one of its admins to set the key.",
        )
    return TenantReadiness(True, "")


def tenant_members_list(*, tenant: Tenant) -> QuerySet[Membership]:
    """The tenant's members with their users, admins first, then by username."""
    return (
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .annotate(
            role_rank=Case(
                *[When(role=role, then=Value(rank)) for role, rank in ROLE_RANK.items()],
                default=Value(0),
            )
        )
        .order_by("-role_rank", "user__username")
    )


def tenant_list_administered(*, user: User) -> QuerySet[Tenant]:
    """Tenants `user` administers (all for superusers), with member counts, by name."""
    # A subquery: tenant_list_for already joins memberships to filter, so Count() would count those.
    counts = (
        Membership.objects.filter(tenant=OuterRef("pk"))
        .order_by()
        .values("tenant")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        tenant_list_for(user=user, min_role=Role.ADMIN)
        .annotate(member_count=Coalesce(Subquery(counts), 0))
        .order_by("name")
    )
