"""The chain and "final exactly once" under real concurrency: threads with their own database
connections, committing for real (SQLite: a file, BEGIN IMMEDIATE, WAL; PostgreSQL: READ COMMITTED,
the unique (tenant, chain_seq) constraint deciding between writers)."""

import io
import itertools
import threading

import pytest
from django.core.management import call_command
from django.db import connections

from trunks.audit.writer import audit_attempt_finish, audit_attempt_start, audit_event_record
from trunks.models import AuditKind, AuditRecord, AuditStatus

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 6


def _in_threads(work, count: int) -> list:
    """`work(i)` in `count` threads released together; what each returned or raised."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def run(i):
        try:
            barrier.wait(10)
            outcomes[i] = work(i)
        except Exception as error:
            outcomes[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a writer did not finish"
    return outcomes


def _chain_ok() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_writers_finishing_at_once_each_take_one_place_in_one_unbroken_chain(tenant_a, alice):
    # Sealed and committed first: every writer then remembers it as the chain's head (the audit
    # cache's guess), tries the position after it at once, and all but one must read the head.
    audit_event_record(kind=AuditKind.TENANT_CREATED, tenant=tenant_a, actor=alice)
    pending = [
        audit_attempt_start(
            tenant=tenant_a, actor=alice, request=None, data={"n": i}, submission_token=f"tok-{i}"
        )
        for i in range(WRITERS)
    ]

    def finish_or_record(i):
        if i % 3 == 2:  # an admin event sealed between the attempts
            return audit_event_record(kind=AuditKind.MEMBER_ADDED, tenant=tenant_a, actor=alice)
        return audit_attempt_finish(record=pending[i], status=AuditStatus.SUCCEEDED)

    outcomes = _in_threads(finish_or_record, WRITERS)
    assert all(isinstance(o, AuditRecord) for o in outcomes), outcomes
    sealed = list(
        AuditRecord.objects.filter(tenant=tenant_a, chain_seq__isnull=False).order_by("chain_seq")
    )
    assert [r.chain_seq for r in sealed] == list(range(1, WRITERS + 2))
    assert all(b.prev_hash == a.record_hash for a, b in itertools.pairwise(sealed))
    assert "OK:" in _chain_ok()


def test_two_finishers_of_one_attempt_at_once_finish_it_exactly_once(tenant_a, alice):
    """The create and the pending sweeper (or a retried request) race to finish one attempt."""
    pending = audit_attempt_start(
        tenant=tenant_a, actor=alice, request=None, data={}, submission_token="tok-once"
    )
    statuses = [AuditStatus.SUCCEEDED, AuditStatus.UNKNOWN]

    outcomes = _in_threads(
        lambda i: audit_attempt_finish(record=pending, status=statuses[i]), len(statuses)
    )
    won = [o for o in outcomes if isinstance(o, AuditRecord)]
    refused = [o for o in outcomes if isinstance(o, ValueError)]
    assert len(won) == 1 and len(refused) == 1, outcomes
    assert "final already" in str(refused[0])
    stored = AuditRecord.objects.get(pk=pending.pk)
    assert (stored.status, stored.chain_seq) == (won[0].status, 1)
    assert AuditRecord.objects.filter(chain_seq__isnull=False).count() == 1
    assert "OK:" in _chain_ok()
