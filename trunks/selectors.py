"""Reads, each scoped to the tenants the actor may see. Writes live in trunks.services."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Case, Count, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from django.utils import timezone

from .models import ROLE_RANK, AuditKind, AuditRecord, AuditStatus, Membership, Role, Tenant

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


# --- Audit ---------------------------------------------------------------------------------------
# The audit log as managers read it: scoped to the tenants where the reader is a manager (every
# tenant for superusers), filtered (trunks.filters.AuditRecordFilter), newest first, paged by a
# keyset on (started_at, id) so a deep page costs what the first one does and no COUNT(*) is run.

AUDIT_PAGE_SIZE = 50


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
        rows = Tenant.objects.order_by("name").values_list("id", "name", "slug")
        access = [TenantAccess(pk, name, slug, Role.ADMIN) for pk, name, slug in rows]
    else:
        rows = (
            Membership.objects.filter(user=user)
            .order_by("tenant__name")
            .values_list("tenant_id", "tenant__name", "tenant__slug", "role")
        )
        access = [TenantAccess(*row) for row in rows]
    user._portal_tenant_access = access
    return access


def user_best_role(*, user: User) -> str | None:
    """The highest role `user` holds in any tenant (admin for superusers), or None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    roles = [a.role for a in user_tenant_access(user=user) if a.role in ROLE_RANK]
    return max(roles, key=ROLE_RANK.__getitem__, default=None)


def audit_tenant_choices(*, user: User) -> list[TenantAccess]:
    """The tenants whose audit log `user` may read, by name (from user_tenant_access)."""
    allowed = set(_roles_at_least(Role.MANAGER))
    return [a for a in user_tenant_access(user=user) if a.role in allowed]


def audit_tenants_for(*, user: User) -> QuerySet[Tenant]:
    """The tenants whose audit log `user` may read."""
    return tenant_list_for(user=user, min_role=Role.MANAGER).order_by("name")


def audit_scope(*, user: User) -> QuerySet[AuditRecord]:
    """Every record `user` may read. The tenant ids come from the request's one membership
    query, so the planner sees literal ids and picks the per-tenant indexes."""
    if not user.is_authenticated:
        return AuditRecord.objects.none()
    if user.is_superuser:
        return AuditRecord.objects.all()
    tenant_ids = [a.id for a in audit_tenant_choices(user=user)]
    return AuditRecord.objects.filter(tenant_id__in=tenant_ids)


def audit_actor_choices(*, user: User) -> list[tuple[int, str]]:
    """(id, username) of the people the "Who" filter offers `user`: members of the tenants they
    read (everyone, for superusers). Shared briefly through the cache (trunks.audit_cache)."""
    from django.contrib.auth import get_user_model

    from .audit_cache import PEOPLE, audit_cached

    UserModel = get_user_model()
    if user.is_superuser:
        scope: tuple = ("all",)
        actors = UserModel.objects.all()
    else:
        tenant_ids = sorted(a.id for a in audit_tenant_choices(user=user))
        scope = tuple(tenant_ids)
        actors = UserModel.objects.filter(memberships__tenant_id__in=tenant_ids).distinct()
    return audit_cached(
        ("actors", scope),
        lambda: list(actors.order_by("username").values_list("pk", "username")),
        generation=PEOPLE,
    )


def audit_filterset(*, user: User, data: Mapping[str, Any] | None):
    """The bound filter form over what `user` may read. Invalid fields are ignored (and reported
    by the form); the valid ones still apply."""
    from .filters import AuditRecordFilter

    return AuditRecordFilter(
        data=data if data is not None else {},
        queryset=audit_scope(user=user),
        tenants=audit_tenant_choices(user=user),
        actors=audit_actor_choices(user=user),
    )


def audit_list(*, user: User, filters: Mapping[str, Any] | None = None) -> QuerySet[AuditRecord]:
    """The records `user` may read that match `filters` (query-string style), in display order."""
    filterset = audit_filterset(user=user, data=filters)
    return audit_order(filterset.qs, sort=filterset.sort_order)


def audit_order(queryset: QuerySet[AuditRecord], *, sort: str) -> QuerySet[AuditRecord]:
    if sort == AUDIT_SORT_OLDEST:
        return queryset.order_by("started_at", "id")
    return queryset.order_by("-started_at", "-id")


AUDIT_SORT_NEWEST = "newest"
AUDIT_SORT_OLDEST = "oldest"


@dataclass(frozen=True)
class AuditCursor:
    """A position in the log: the (started_at, id) of a record. In URLs as `<epoch µs>_<id>`."""

    started_at: datetime
    pk: int

    def __str__(self) -> str:
        delta = self.started_at - EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}_{self.pk}"

    @classmethod
    def parse(cls, raw: str | None) -> "AuditCursor | None":
        """The cursor in `raw`, or None when it is missing or not one of ours."""
        if not raw:
            return None
        micros, sep, pk = raw.partition("_")
        if not sep or not micros.lstrip("-").isdigit() or not pk.isdigit():
            return None
        try:
            return cls(EPOCH + timedelta(microseconds=int(micros)), int(pk))
        except OverflowError:
            return None

    @classmethod
    def of(cls, record: AuditRecord) -> "AuditCursor":
        return cls(record.started_at, record.pk)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    # Cursors for the pages before and after this one in display order; None at either end.
    previous_cursor: AuditCursor | None
    next_cursor: AuditCursor | None


def _keyset(
    queryset: QuerySet[AuditRecord], cursor: AuditCursor, *, ascending: bool
) -> QuerySet[AuditRecord]:
    # (started_at, id) beyond the cursor. The redundant range on started_at alone lets PostgreSQL
    # start the index scan at the cursor instead of filtering every newer row.
    ts, pk = cursor.started_at, cursor.pk
    if ascending:
        return queryset.filter(started_at__gte=ts).filter(
            Q(started_at__gt=ts) | Q(started_at=ts, id__gt=pk)
        )
    return queryset.filter(started_at__lte=ts).filter(
        Q(started_at__lt=ts) | Q(started_at=ts, id__lt=pk)
    )


def audit_page(
    queryset: QuerySet[AuditRecord],
    *,
    sort: str = AUDIT_SORT_NEWEST,
    after: AuditCursor | None = None,
    before: AuditCursor | None = None,
    size: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """One page of `queryset` in `sort` order: the first, the one after `after`, or the one before
    `before`. One query, whatever the depth."""
    ascending = sort == AUDIT_SORT_OLDEST
    if before is not None:
        # Walk backwards from the cursor, then show the rows in display order.
        rows = list(
            audit_order(_keyset(queryset, before, ascending=not ascending), sort=_flip(sort))[
                : size + 1
            ]
        )
        has_previous = len(rows) > size
        records = list(reversed(rows[:size]))
        has_next = True
    else:
        base = _keyset(queryset, after, ascending=ascending) if after is not None else queryset
        rows = list(audit_order(base, sort=sort)[: size + 1])
        has_next = len(rows) > size
        records = rows[:size]
        has_previous = after is not None
    return AuditPage(
        records=records,
        previous_cursor=AuditCursor.of(records[0]) if records and has_previous else None,
        next_cursor=AuditCursor.of(records[-1]) if records and has_next else None,
    )


def _flip(sort: str) -> str:
    return AUDIT_SORT_NEWEST if sort == AUDIT_SORT_OLDEST else AUDIT_SORT_OLDEST


def audit_get(*, user: User, pk: int) -> AuditRecord:
    """One record `user` may read, with what it points at; 404 for any other (no existence leak)."""
    try:
        return audit_scope(user=user).select_related("related", "actor").get(pk=pk)
    except AuditRecord.DoesNotExist:
        raise Http404("No such audit record.") from None


def audit_followups(*, record: AuditRecord) -> list[AuditRecord]:
    """Records that point at `record` (retries of it, the resolution of its unknown outcome)."""
    return list(record.followups.order_by("started_at", "id"))


def audit_chain_neighbour(*, record: AuditRecord) -> AuditRecord | None:
    """The record before `record` in its tenant's hash chain."""
    if not record.chain_seq or record.chain_seq <= 1:
        return None
    return (
        AuditRecord.objects.filter(tenant_id=record.tenant_id, chain_seq=record.chain_seq - 1)
        .only("id", "record_hash", "chain_seq")
        .first()
    )


def audit_daily_counts(
    queryset: QuerySet[AuditRecord], *, days: int, last_day: date
) -> dict[date, dict[str, int]]:
    """Trunk attempts per local day and status over the `days` days ending on `last_day`, from
    the (filtered) `queryset`. One aggregate query."""
    tz = timezone.get_current_timezone()
    first_day = last_day - timedelta(days=days - 1)
    start = datetime.combine(first_day, time.min, tzinfo=tz)
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=tz)
    rows = (
        queryset.filter(kind=AuditKind.TRUNK_CREATE, started_at__gte=start, started_at__lt=end)
        .order_by()
        .annotate(day=TruncDate("started_at", tzinfo=tz))
        .values("day", "status")
        .annotate(n=Count("id"))
        .values_list("day", "status", "n")
    )
    counts: dict[date, dict[str, int]] = {first_day + timedelta(days=i): {} for i in range(days)}
    for day, status, n in rows:
        if day in counts:
            counts[day][status] = n
    return counts


def audit_chart_counts(
    *, user: User, filterset, days: int, last_day: date
) -> dict[date, dict[str, int]]:
    """audit_daily_counts of the filtered records `user` may read, shared briefly through the
    cache under the reader's scope and the valid filters (trunks.audit_cache)."""
    from .audit_cache import audit_cached

    filterset.form.is_valid()
    filters = tuple(
        sorted(
            (name, str(value))
            for name, value in getattr(filterset.form, "cleaned_data", {}).items()
            if value not in (None, "") and name != "sort"
        )
    )
    scope = (
        ("all",)
        if user.is_superuser
        else tuple(sorted(a.id for a in audit_tenant_choices(user=user)))
    )
    tz = timezone.get_current_timezone_name()
    return audit_cached(
        ("chart", scope, filters, days, last_day.isoformat(), tz),
        lambda: audit_daily_counts(filterset.qs, days=days, last_day=last_day),
    )


# --- Trunks (issue 5) ----------------------------------------------------------------------------


def trunk_attempt_for_token(*, user: User, token: str) -> AuditRecord | None:
    """The attempt a form submission with `token` already made, if it was this user's."""
    if not user.is_authenticated or not token:
        return None
    return (
        AuditRecord.objects.filter(kind=AuditKind.TRUNK_CREATE, submission_token=token, actor=user)
        .select_related("tenant")
        .first()
    )


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
    """`tenant`'s recent attempts whose outcome is unknown and that nothing has followed up yet
    (no retry, no resolution): the form warns about them before a similar trunk is created."""
    since = timezone.now() - timedelta(hours=hours)
    return list(
        AuditRecord.objects.filter(
            kind=AuditKind.TRUNK_CREATE,
            tenant=tenant,
            status=AuditStatus.UNKNOWN,
            started_at__gte=since,
            followups__isnull=True,
        ).order_by("-started_at")[:limit]
    )


# --- Unknown outcomes resolved (issue 8) -----------------------------------------------------------

from django.db.models import Exists  # noqa: E402


def audit_with_resolution(queryset: QuerySet[AuditRecord]) -> QuerySet[AuditRecord]:
    """`queryset` with `is_resolved`: whether an OUTCOME_RESOLVED event points at the record.

    A correlated EXISTS in the same query: a page costs one query however many rows it shows.
    """
    return queryset.annotate(
        is_resolved=Exists(
            AuditRecord.objects.filter(related=OuterRef("pk"), kind=AuditKind.OUTCOME_RESOLVED)
        )
    )
