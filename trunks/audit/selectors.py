"""Reads of the audit log, each scoped to the tenants where the reader is a manager (every tenant
for superusers), filtered (trunks.audit.filters.AuditRecordFilter); paging: trunks.audit.paging."""

import functools
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from trunks.access import TenantAccess, User, user_tenants_at_least
from trunks.models import AuditKind, AuditRecord, AuditStatus, Role

from .cache import PEOPLE, audit_cached
from .filters import AuditRecordFilter


def audit_tenant_choices(*, user: User) -> list[TenantAccess]:
    """The tenants whose audit log `user` may read, by name (from the request's one membership
    query)."""
    return user_tenants_at_least(user=user, min_role=Role.MANAGER)


def audit_reader_scope(*, user: User) -> tuple:
    """Whose records `user` reads, as a key for what is kept for them: ("all",) for a superuser,
    else the ids of the tenants they manage, sorted."""
    if user.is_superuser:
        return ("all",)
    return tuple(sorted(a.id for a in audit_tenant_choices(user=user)))


def audit_scope(*, user: User) -> QuerySet[AuditRecord]:
    """Every record `user` may read. The tenant ids come from the request's one membership
    query, so the planner sees literal ids and picks the per-tenant indexes."""
    if not user.is_authenticated:
        return AuditRecord.objects.none()
    if user.is_superuser:
        return AuditRecord.objects.all()
    tenant_ids = [a.id for a in audit_tenant_choices(user=user)]
    return AuditRecord.objects.filter(tenant_id__in=tenant_ids)


def audit_log_version(*, user: User) -> tuple[int, int]:
    """What changes whenever the records `user` may read change, read from the database in one
    statement: (records sealed, attempts pending) in their tenants. Every write to the log is a
    pending attempt's INSERT (one more pending), its completion (one fewer pending, one more
    sealed: the UPDATE gives it the next place in its tenant's chain) or a final record's INSERT
    (one more sealed); records are never deleted, and a sealed record is never changed (on
    PostgreSQL a trigger refuses it) but for its actor set to NULL when the person's account is
    deleted. So the pair changes at the commit of every write, and never comes back: sealed only
    grows, and pending only grows while sealed stays. A tenant's sealed count is its chain's last
    place, read from the (tenant, chain_seq) index: no count over the records."""
    records = connections[AuditRecord.objects.db].ops.quote_name(AuditRecord._meta.db_table)
    tenants = connections[AuditRecord.objects.db].ops.quote_name(
        AuditRecord._meta.get_field("tenant").related_model._meta.db_table
    )
    if user.is_superuser:
        ids: list[int] = []
        in_tenants = in_records = ""
    else:
        ids = list(audit_reader_scope(user=user))
        if not ids:
            return (0, 0)
        marks = ", ".join(["%s"] * len(ids))
        in_tenants, in_records = f" WHERE t.id IN ({marks})", f" AND tenant_id IN ({marks})"
    # The table names quoted; the ids and the status are parameters.
    sql = (
        f"SELECT (SELECT COALESCE(SUM(head), 0) FROM (SELECT (SELECT MAX(a.chain_seq) FROM "  # noqa: S608
        f"{records} a WHERE a.tenant_id = t.id AND a.chain_seq IS NOT NULL) AS head FROM "
        f"{tenants} t{in_tenants}) heads), (SELECT COUNT(*) FROM {records} WHERE status = %s"
        f"{in_records})"
    )
    with connections[AuditRecord.objects.db].cursor() as cursor:
        cursor.execute(sql, [*ids, str(AuditStatus.PENDING), *ids])
        sealed, pending = cursor.fetchone()
    return (int(sealed), int(pending))


def audit_actor_choices(*, user: User) -> list[tuple[int, str]]:
    """(id, username) of the people the "Who" filter offers `user`: members of the tenants they
    read (everyone, for superusers). Shared briefly through the cache (trunks.audit.cache)."""
    UserModel = get_user_model()
    scope = audit_reader_scope(user=user)
    if user.is_superuser:
        actors = UserModel.objects.all()
    else:
        actors = UserModel.objects.filter(memberships__tenant_id__in=scope).distinct()
    return audit_cached(
        ("actors", scope),
        lambda: list(actors.order_by("username").values_list("pk", "username")),
        generation=PEOPLE,
    )


def audit_filterset(*, user: User, data: Mapping[str, Any] | None):
    """The bound filter form over what `user` may read. Invalid fields are ignored (and reported
    by the form); the valid ones still apply."""
    return AuditRecordFilter(
        data=data if data is not None else {},
        queryset=audit_scope(user=user),
        tenants=audit_tenant_choices(user=user),
        actors=audit_actor_choices(user=user),
    )


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
    cache under the reader's scope and the valid filters (trunks.audit.cache)."""
    filterset.form.is_valid()
    filters = tuple(
        sorted(
            (name, str(value))
            for name, value in getattr(filterset.form, "cleaned_data", {}).items()
            if value not in (None, "") and name != "sort"
        )
    )
    scope = audit_reader_scope(user=user)
    tz = timezone.get_current_timezone_name()
    return audit_cached(
        ("chart", scope, filters, days, last_day.isoformat(), tz),
        lambda: audit_daily_counts(filterset.qs, days=days, last_day=last_day),
    )


def _resolutions():
    return AuditRecord.objects.filter(related=OuterRef("pk"), kind=AuditKind.OUTCOME_RESOLVED)


def _successful_retries():
    return AuditRecord.objects.filter(
        related=OuterRef("pk"), kind=AuditKind.TRUNK_CREATE, status=AuditStatus.SUCCEEDED
    )


def audit_unknown_handled():
    """Whether an unknown outcome (the outer record) has been dealt with: a manager resolved it,
    or a retry of it created the trunk. The one definition the log and the form's warning share."""
    return Exists(_resolutions()) | Exists(_successful_retries())


def _followup_annotations() -> dict[str, Case]:
    def for_unknown(subquery):
        return Case(
            When(status=AuditStatus.UNKNOWN, then=Subquery(subquery)),
            default=Value(None),
            output_field=CharField(),
        )

    return {
        "resolution_username": for_unknown(
            _resolutions().order_by("started_at", "id").values("trunk_username")[:1]
        ),
        "retried_as": for_unknown(
            _successful_retries().order_by("started_at", "id").values("trunk_username")[:1]
        ),
    }


@functools.cache
def _followup_sql(alias: str) -> dict[str, RawSQL] | None:
    """The two annotations as SQL, compiled once per database: building and compiling their
    correlated subqueries was three quarters of the page query's preparation (~2 ms a page, issue
    17's profile). Compiled from the expressions above, so there is still one definition; each is
    the SELECT list of `SELECT <expr> AS "<name>" FROM <the table>`, where the outer record is the
    unaliased table, as it is in every query of the log. None (the expressions then) if the SQL
    does not have that shape."""
    table = connections[alias].ops.quote_name(AuditRecord._meta.db_table)
    compiled = {}
    for name, expression in _followup_annotations().items():
        probe = (
            AuditRecord.objects.using(alias).annotate(**{name: expression}).values(name).order_by()
        )
        sql, params = probe.query.get_compiler(alias).as_sql()
        head, tail = "SELECT ", f" AS {connections[alias].ops.quote_name(name)} FROM {table}"
        if not (sql.startswith(head) and sql.endswith(tail)):
            return None
        # Django's own SQL for our own expression, its values still parameters: nothing from a request.
        compiled[name] = RawSQL(sql[len(head) : -len(tail)], params, output_field=CharField())  # noqa: S611
    return compiled


def audit_with_resolution(queryset: QuerySet[AuditRecord]) -> QuerySet[AuditRecord]:
    """`queryset` with what became of each unknown outcome: `resolution_username` (None while
    unresolved; "" when resolved as not created, else the trunk's username) and `retried_as` (the
    username a successful retry created, or None).

    Correlated subqueries in the same query, evaluated only for unknown rows (CASE): a page costs
    one query however many rows it shows.
    """
    return queryset.annotate(**(_followup_sql(queryset.db) or _followup_annotations()))


def audit_unknown_unresolved(*, user: User, limit: int = 10) -> list[AuditRecord]:
    """Trunk attempts `user` may read whose outcome is unknown and that nothing has followed up
    (no retry, no resolution), newest first: what a manager's home page asks them to settle."""
    return list(
        audit_scope(user=user)
        .filter(kind=AuditKind.TRUNK_CREATE, status=AuditStatus.UNKNOWN, followups__isnull=True)
        .order_by("-started_at", "-id")[:limit]
    )


def audit_week_totals(*, user: User, days: int = 7) -> dict[str, int]:
    """Trunk attempts per status over the last `days` local days (today included), of the records
    `user` may read, with their sum under "total": the week at a glance."""
    today = timezone.localdate()
    counts = audit_daily_counts(audit_scope(user=user), days=days, last_day=today)
    totals = {status.value: 0 for status in AuditStatus}
    for per_status in counts.values():
        for status, n in per_status.items():
            totals[status] = totals.get(status, 0) + n
    totals["total"] = sum(totals.values())
    return totals
