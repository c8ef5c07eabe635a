"""The audit log in display order, a page at a time: a keyset on (started_at, id), so a deep page
costs what the first one does and no COUNT(*) is run."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

from trunks.models import AuditRecord

AUDIT_PAGE_SIZE = 50
AUDIT_SORT_NEWEST = "newest"
AUDIT_SORT_OLDEST = "oldest"


def audit_order(queryset: QuerySet[AuditRecord], *, sort: str) -> QuerySet[AuditRecord]:
    if sort == AUDIT_SORT_OLDEST:
        return queryset.order_by("started_at", "id")
    return queryset.order_by("-started_at", "-id")


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
