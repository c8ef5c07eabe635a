"""Writing the audit log: attempts (pending → final once) and admin events. Append-only.

Every record joins its tenant's hash chain (trunks.audit.chain) at the moment it becomes final: it
takes the position after the chain's last record and that record's hash. The database's unique
constraint on (tenant, chain_seq) lets only one record have each position: when two writers read
the same last record, the second one's write is refused, and it reads the chain's head again and
retries (in a savepoint). On SQLite, IMMEDIATE transactions already run writers one at a time.

Finishing an attempt first tries, without reading it again, the head its pending INSERT saw (the
same statement RETURNs the tenant's last sealed record: no other round trip): its UPDATE applies
only if that record is in the table with that hash (so the position after it exists, and positions
run without gaps) and the unique constraint refuses the position if it is taken (another record
was sealed meanwhile: the guess was not the head). Either way the writer falls back to reading the
head, so a wrong or missing guess costs a query, never the chain.

A create's two writes (the pending INSERT, the finishing UPDATE) are written by hand, one statement
each built once per process (trunks.rows; _finish_sql): the ORM's save path cost more CPU than
running them. The values still go through the model's fields, and the hash is computed as before.
On PostgreSQL the finishing UPDATE carries the row that commits with it (a create's Trunk) in the
same statement, and a finishing that is one statement runs without BEGIN and COMMIT.
"""

import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from trunks.models import AuditKind, AuditRecord, AuditStatus, Tenant
from trunks.reads import CompiledRead
from trunks.rows import (
    row_converters,
    row_copy,
    row_insert,
    row_insert_returning,
    row_insert_statement,
    row_new,
)

from .cache import audit_cache_invalidate
from .chain import record_hash_compute


def request_meta(request: HttpRequest | None) -> dict[str, Any]:
    """Who sent the request, from where: for the audit record."""
    if request is None:
        return {}
    return {
        "client_ip": getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:400],
        "request_id": getattr(request, "request_id", ""),
    }


# The chain's head: (chain_seq, record_hash) of the tenant's last sealed record (compiled once: read
# whenever a guessed head was wrong, e.g. many people of one tenant creating at once).
_CHAIN_HEAD = CompiledRead(
    lambda tenant_id: (
        AuditRecord.objects.filter(tenant_id=tenant_id, chain_seq__isnull=False)
        .order_by("-chain_seq")
        .values_list("chain_seq", "record_hash")[:1]
    ),
    arguments=1,
)


def _seal(record: AuditRecord) -> None:
    """Give a final record the next place in its tenant's chain (as last read)."""
    found = _CHAIN_HEAD.rows(record.tenant_id)
    last = found[0] if found else None
    record.chain_seq = (last[0] + 1) if last else 1
    record.prev_hash = last[1] if last else ""
    record.record_hash = record_hash_compute(record)


# How many times a writer reads the chain's head again after another writer took its place. Each
# retry means another record was appended meanwhile, so this bounds a burst, not a wait.
CHAIN_ATTEMPTS = 50


class _WrongHead(Exception):
    """The guessed head was not the chain's head (or the row was final already: read to tell)."""


def _sealed_write(
    record: AuditRecord, write, *, head: tuple[int, str] | None = None, one_statement: bool = False
) -> None:
    """Seal `record` and `write()` it, in a transaction (a savepoint when the caller's transaction
    is open); when its chain position was taken by another writer meanwhile (the unique constraint
    refused it), seal it again at the new head.

    With `head` (a guessed (chain_seq, record_hash) of the chain's last record), first without
    reading the head: `write(after=head)` must apply only if that record exists with that hash.
    When that write is `one_statement`, it needs no transaction of its own outside the caller's
    (no BEGIN and COMMIT: the statement is atomic by itself)."""
    if head is not None:
        record.chain_seq, record.prev_hash = head[0] + 1, head[1]
        record.record_hash = record_hash_compute(record)
        in_transaction = connection.in_atomic_block or not one_statement
        try:
            with transaction.atomic() if in_transaction else nullcontext():
                write(after=head)
            return
        except (_WrongHead, IntegrityError):
            pass  # rolled back: read the head
    for attempt in range(1, CHAIN_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                _seal(record)
                write()
            return
        except IntegrityError:
            taken = AuditRecord.objects.filter(
                tenant_id=record.tenant_id, chain_seq=record.chain_seq
            ).exists()
            if not taken or attempt == CHAIN_ATTEMPTS:
                raise


def _signed_in(actor):
    """The actor recorded: a signed-in user, or None (a job, an anonymous request)."""
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _actor_fields(actor) -> dict[str, Any]:
    actor = _signed_in(actor)
    return {"actor": actor, "actor_username": actor.get_username() if actor is not None else ""}


def audit_event_record(
    *,
    kind: AuditKind,
    tenant: Tenant,
    actor,
    request: HttpRequest | None = None,
    data: dict[str, Any] | None = None,
    related: AuditRecord | None = None,
    status: AuditStatus = AuditStatus.SUCCEEDED,
    error_message: str = "",
    trunk_username: str = "",
) -> AuditRecord:
    """Record an admin event (final at once). `data` must hold no secret.

    `trunk_username` names the trunk an event is about (a resolved unknown outcome), so the log's
    search finds it."""
    now = timezone.now()
    record = AuditRecord(
        kind=kind,
        tenant=tenant,
        tenant_name=tenant.name,
        **_actor_fields(actor),
        **request_meta(request),
        data=data or {},
        status=status,
        error_message=error_message,
        trunk_username=trunk_username,
        related=related,
        started_at=now,
        finished_at=now,
        duration_ms=0,
    )
    _sealed_write(record, lambda: row_insert(record))
    audit_cache_invalidate()
    return record


def audit_attempt_start(
    *,
    tenant: Tenant,
    actor,
    request: HttpRequest | None,
    data: dict[str, Any],
    submission_token: str | None,
    related: AuditRecord | None = None,
    kind: AuditKind = AuditKind.TRUNK_CREATE,
    trunk_username: str = "",
    trunk_id: str = "",
) -> AuditRecord:
    """Record a trunk attempt (a create, or a change of `trunk_username`) as pending, before
    anything goes upstream.

    Raises IntegrityError when `submission_token` was used already: the caller shows that
    submission's result instead of calling Crazytel again.
    """
    assert "password" not in data, "the password is never recorded"
    actor = _signed_in(actor)
    record = row_new(
        AuditRecord,
        {
            "kind": kind,
            "tenant_id": tenant.pk,
            "tenant_name": tenant.name,
            "actor_id": actor.pk if actor is not None else None,
            "actor_username": actor.get_username() if actor is not None else "",
            **request_meta(request),
            "data": data,
            "trunk_username": trunk_username,
            "trunk_id": trunk_id,
            "caller_id_number": str(data.get("caller_id_number", ""))[:32],
            "description": str(data.get("description", ""))[:255],
            "status": AuditStatus.PENDING,
            "submission_token": submission_token,
            "related_id": related.pk if related is not None else None,
            "started_at": timezone.now(),
        },
        related={"tenant": tenant, "actor": actor, "related": related},
    )
    record._monotonic_start = time.monotonic()
    head_sql, tenant_id = _head_sql(connection.vendor), [tenant.pk]
    if connection.in_atomic_block:
        # In the caller's transaction: a savepoint, so a used token leaves that transaction usable.
        with transaction.atomic():
            head = row_insert_returning(record, also=head_sql, also_params=tenant_id * 2)
    else:
        # One statement, committed by itself before anything goes upstream.
        head = row_insert_returning(record, also=head_sql, also_params=tenant_id * 2)
    # The chain's head as this INSERT saw it: audit_attempt_finish's first guess.
    record._chain_head = head if head[0] is not None else None
    # No audit cache bump here: the cached figures take an attempt into account when it is final
    # (audit_attempt_finish bumps once), so an attempt costs one bump, not two.
    return record


def audit_attempt_finish(
    *,
    record: AuditRecord,
    status: AuditStatus,
    upstream_status: int | None = None,
    error_category: str = "",
    error_message: str = "",
    trunk_username: str = "",
    trunk_id: str = "",
    response: dict[str, Any] | None = None,
    commit_with: Callable[[AuditRecord], Model | None] | None = None,
) -> AuditRecord:
    """Complete a pending attempt, exactly once, and seal it into the chain. `commit_with(final)`
    builds a row that must commit with the final record or not at all (a create's Trunk record;
    None: nothing to add), INSERTed unless it would break a unique constraint, so a caller needs
    no transaction of its own around this.

    One UPDATE of the finishing fields (after one read of the chain's head, unless the head the
    pending INSERT saw is still the head: see the module's docstring), which applies only while
    the row is still pending: a second finisher (the pending sweeper, a retried request) waits
    for the first's row lock, then finds it final and is refused (ValueError), and the seal it
    computed is rolled back with it. The rest of a pending row is what `record` holds (a pending
    row changes only here), so it is not read again. On PostgreSQL the UPDATE and the row's
    INSERT are one statement (a data-modifying WITH whose INSERT runs only if the UPDATE
    applied): on the guessed head, finishing is one round trip, without BEGIN and COMMIT. SQLite has no such statement: there
    they are two, in one transaction.
    """
    assert status != AuditStatus.PENDING
    fresh = row_copy(record)  # the caller's pending record stays as it was
    now = timezone.now()
    fresh.status = status
    fresh.upstream_status = upstream_status
    fresh.error_category = error_category
    fresh.error_message = error_message
    fresh.trunk_username = trunk_username
    fresh.trunk_id = trunk_id
    fresh.response = response
    fresh.finished_at = now
    elapsed_ms = int((now - fresh.started_at).total_seconds() * 1000)
    fresh.duration_ms = min(max(0, elapsed_ms), DURATION_MS_MAX)
    row = commit_with(fresh) if commit_with is not None else None
    # PostgreSQL's data-modifying WITH sends the UPDATE and the row's INSERT as one statement.
    together = row is not None and connection.vendor == "postgresql"

    def write(after: tuple[int, str] | None = None) -> None:
        converters = row_converters(connection, _finishing())
        params = [convert(getattr(fresh, attname)) for attname, _, convert in converters]
        params += [record.pk, AuditStatus.PENDING.value]
        if after is not None:
            params += [record.tenant_id, after[0], after[1]]
        sql = _finish_sql(connection.vendor, guessed=after is not None)
        if together:
            insert, insert_params = row_insert_statement(
                row, when="EXISTS (SELECT 1 FROM finished)", ignore_conflicts=True
            )
            sql = f"WITH finished AS ({sql} RETURNING 1), added AS ({insert}) "
            sql += "SELECT count(*) FROM finished"
            params += insert_params
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated = cursor.fetchone()[0] if together else cursor.rowcount
        if not updated:
            raise _FinalAlready(record.pk) if after is None else _WrongHead()
        if row is not None and not together:
            row_insert(row, ignore_conflicts=True)

    try:
        _sealed_write(
            fresh,
            write,
            head=getattr(record, "_chain_head", None),
            one_statement=row is None or together,
        )
    except _FinalAlready:
        raise ValueError(f"audit record {record.pk} is final already") from None
    audit_cache_invalidate()
    return fresh


class _FinalAlready(Exception):
    pass


# The column's ceiling (a 32-bit integer: 24.8 days); an attempt found pending longer gets it.
DURATION_MS_MAX = 2**31 - 1

# What finishing an attempt writes (the rest of a pending row is as audit_attempt_start wrote it).
FINISH_FIELDS = [
    "status",
    "upstream_status",
    "error_category",
    "error_message",
    "trunk_username",
    "trunk_id",
    "response",
    "finished_at",
    "duration_ms",
    "chain_seq",
    "prev_hash",
    "record_hash",
]


@cache
def _finishing() -> tuple:
    return tuple(AuditRecord._meta.get_field(name) for name in FINISH_FIELDS)


@cache
def _head_sql(vendor: str) -> str:
    """Two expressions: the chain_seq and the record_hash of the last sealed record of the tenant
    (parameters: its id, twice), or NULL for a chain with no record yet."""
    qn = connection.ops.quote_name
    table = qn(AuditRecord._meta.db_table)
    tenant, seq = qn("tenant_id"), qn("chain_seq")

    def last(column: str) -> str:
        return (
            f"(SELECT head.{qn(column)} FROM {table} head WHERE head.{tenant} = %s "  # noqa: S608
            f"AND head.{seq} IS NOT NULL ORDER BY head.{seq} DESC LIMIT 1)"
        )

    return f"{last('chain_seq')}, {last('record_hash')}"


# The guessed head's columns, in the order of its parameters.
HEAD_FIELDS = ("tenant", "chain_seq", "record_hash")


@cache
def _finish_sql(vendor: str, *, guessed: bool) -> str:
    """The finishing UPDATE: it applies only while the row is pending and, with a `guessed` head,
    only if that record is in the table with that hash (parameters: FINISH_FIELDS' values, the
    id, 'pending', then the guessed head's tenant, chain_seq and record_hash)."""
    qn = connection.ops.quote_name
    table = qn(AuditRecord._meta.db_table)
    column = {f.name: qn(f.column) for f in AuditRecord._meta.concrete_fields}
    sets = ", ".join(f"{column[name]} = %s" for name in FINISH_FIELDS)
    where = [f"{column['id']} = %s", f"{column['status']} = %s"]
    if guessed:
        head = " AND ".join(f"head.{column[name]} = %s" for name in HEAD_FIELDS)
        where.append(f"EXISTS (SELECT 1 FROM {table} head WHERE {head})")  # noqa: S608
    # Names from the model, values as parameters.
    sql = f"UPDATE {table} SET {sets} WHERE {' AND '.join(where)}"  # noqa: S608
    return sql
