"""Reads about the portal's trunks, scoped to the reader's tenants: the list (a keyset page, no
COUNT), one trunk by username, its history."""

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from trunks.access import User, user_tenant_access
from trunks.audit.paging import AuditCursor
from trunks.models import AuditRecord, Trunk, TrunkState

TRUNK_PAGE_SIZE = 50
STATE_ENABLED = "enabled"
STATE_SUSPENDED = "suspended"
STATE_ATTENTION = "attention"
STATE_CHOICES = [
    ("", "Any state"),
    (STATE_ENABLED, "Enabled"),
    (STATE_SUSPENDED, "Suspended"),
    (STATE_ATTENTION, "Needs attention"),
]


def trunk_scope(*, user: User) -> QuerySet[Trunk]:
    """The trunks of the tenants `user` belongs to (every trunk for superusers)."""
    if not user.is_authenticated:
        return Trunk.objects.none()
    if user.is_superuser:
        return Trunk.objects.all()
    return Trunk.objects.filter(tenant_id__in=[a.id for a in user_tenant_access(user=user)])


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def trunk_filter(
    queryset: QuerySet[Trunk],
    *,
    q: str = "",
    state: str = "",
    creator: int | None = None,
    tenant: int | None = None,
) -> QuerySet[Trunk]:
    """Free text (username, description, or a caller ID typed as dialled: 02 9876 5432, +61…),
    state, creator and tenant."""
    q = (q or "").strip()
    if q:
        # Usernames are kept as Crazytel writes them (upper case): an exact match uses the index.
        match = Q(username=q.upper()) | Q(description__icontains=q)
        digits = _digits(q)
        if len(digits) >= 6:
            # As dialled nationally (0…) or internationally (61…): Crazytel lists 61… numbers.
            international = "61" + digits[1:] if digits.startswith("0") else digits
            match |= Q(caller_id_number=international) | Q(sms_sender=international)
        queryset = queryset.filter(match)
    if state == STATE_ENABLED:
        queryset = queryset.filter(enabled=True)
    elif state == STATE_SUSPENDED:
        queryset = queryset.filter(enabled=False)
    elif state == STATE_ATTENTION:
        queryset = queryset.filter(Q(trunk_id="") | ~Q(state=TrunkState.CONFIRMED))
    if creator:
        queryset = queryset.filter(created_by_id=creator)
    if tenant:
        queryset = queryset.filter(tenant_id=tenant)
    return queryset


@dataclass(frozen=True)
class TrunkPage:
    trunks: list[Trunk]
    next_cursor: str | None


def trunk_page(queryset: QuerySet[Trunk], *, after: str | None = None) -> TrunkPage:
    """One page, newest first, by a keyset on (created_at, id) (the audit log's cursor format):
    no OFFSET, no COUNT, one query however deep."""
    queryset = queryset.order_by("-created_at", "-id").select_related("tenant")
    cursor = AuditCursor.parse(after)
    if cursor is not None:
        ts, pk = cursor.started_at, cursor.pk
        queryset = queryset.filter(created_at__lte=ts).filter(
            Q(created_at__lt=ts) | Q(created_at=ts, id__lt=pk)
        )
    rows = list(queryset[: TRUNK_PAGE_SIZE + 1])
    more = len(rows) > TRUNK_PAGE_SIZE
    rows = rows[:TRUNK_PAGE_SIZE]
    next_cursor = str(AuditCursor(rows[-1].created_at, rows[-1].pk)) if more else None
    return TrunkPage(rows, next_cursor)


def trunk_get_for(*, user: User, username: str) -> Trunk | None:
    """The trunk `username` if it belongs to one of `user`'s tenants; None otherwise."""
    return (
        trunk_scope(user=user)
        .select_related("tenant", "created_record", "change_record")
        .filter(username=(username or "").strip().upper())
        .first()
    )


def trunk_history(*, trunk: Trunk, limit: int = 100) -> list[AuditRecord]:
    """The trunk's audit records, newest first: its create attempt, its changes, resolutions."""
    return list(
        AuditRecord.objects.filter(
            tenant_id=trunk.tenant_id, trunk_username=trunk.username
        ).order_by("-started_at", "-id")[:limit]
    )
