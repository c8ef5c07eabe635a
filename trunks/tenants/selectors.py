"""Reads about tenants and their members, for the admins' pages and commands."""

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Case, Count, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from portal.throttle import USERNAME, login_throttled_kind_for_username
from trunks.access import User, tenant_list_for
from trunks.models import Membership, Role, Tenant


def tenant_members_list(*, tenant: Tenant) -> QuerySet[Membership]:
    """The tenant's members with their users, admins first, then by username."""
    return (
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .annotate(
            role_rank=Case(
                *[When(role=role, then=Value(role.rank)) for role in Role],
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


def tenant_list_needing_attention(*, user: User) -> list[Tenant]:
    """Tenants `user` administers that cannot work as they are: inactive, without an API key, or
    whose last connection test failed, by name (an admin's home page)."""
    return list(
        tenant_list_for(user=user, min_role=Role.ADMIN)
        .filter(Q(is_active=False) | Q(api_key_ciphertext="") | Q(connection_ok=False))
        .order_by("name")
    )


def usernames_locked_out(*, usernames: list[str]) -> set[str]:
    """Which of `usernames` the login throttle holds now: django-axes (from any address) or the
    portal's per-username limit. For the members table's "locked" badge and Unlock button."""
    if not usernames:
        return set()
    locked = set(
        AccessAttempt.objects.filter(
            username__in=usernames,
            failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
            attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
        ).values_list("username", flat=True)
    )
    return locked | {u for u in usernames if login_throttled_kind_for_username(u) == USERNAME}
