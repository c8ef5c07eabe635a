"""A row that commits with an attempt's final record or not at all (a create's Trunk): added once,
never for an attempt that was final already, and on PostgreSQL in the finishing statement itself."""

import types

import pytest
from django.db import connection, transaction

from tests.factories import audit_attempt
from trunks.audit import writer
from trunks.audit.chain import audit_chain_verify
from trunks.lifecycle.records import trunk_row_from_attempt
from trunks.models import AuditRecord, AuditStatus, Trunk


def _trunk(username):
    return lambda final: trunk_row_from_attempt(attempt=final, username=username, trunk_id="77")


def _succeeded_with_trunk(record, username):
    """The attempt finished as succeeded, its Trunk row added in the same statement."""
    return writer.audit_attempt_finish(
        record=record,
        status=AuditStatus.SUCCEEDED,
        trunk_username=username,
        commit_with=_trunk(username),
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "guess", ["the head", "an older record", "a wrong hash", "nothing guessed"]
)
def test_the_trunk_is_added_once_with_the_final_record_whatever_head_is_guessed(
    tenant_a, alice, guess
):
    """Outside a test transaction, as in production: after a refused guess (the older record's
    next position is taken: the unique constraint refuses the statement; a wrong hash: no row
    updated) the finish on the real head seals the record there and the Trunk exists once.
    (That a refused statement adds no Trunk is test_an_attempt_final_already_adds_no_trunk's.)"""
    older = audit_attempt(tenant=tenant_a, actor=alice)
    last = audit_attempt(tenant=tenant_a, actor=alice)
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    pending._chain_head = {
        "the head": (last.chain_seq, last.record_hash),
        "an older record": (older.chain_seq, older.record_hash),
        "a wrong hash": (last.chain_seq, "0" * 64),
    }.get(guess)
    done = _succeeded_with_trunk(pending, "CT700700")
    assert (done.chain_seq, done.prev_hash) == (last.chain_seq + 1, last.record_hash)
    trunk = Trunk.objects.get()
    assert (trunk.username, trunk.trunk_id, trunk.created_record_id) == ("CT700700", "77", done.pk)
    assert (trunk.created_at, trunk.created_by_id) == (done.finished_at, alice.pk)
    assert audit_chain_verify().ok


# Outside a test transaction, as in production: a finishing statement that is refused is not
# rolled back by a savepoint around it (there is none), so what it wrote would stay.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("guessed", [True, False], ids=["head guessed", "head read"])
def test_an_attempt_final_already_adds_no_trunk(tenant_a, alice, guessed):
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    done = writer.audit_attempt_finish(record=pending, status=AuditStatus.FAILED)
    pending._chain_head = (done.chain_seq, done.record_hash) if guessed else None
    with pytest.raises(ValueError, match="final already"):
        _succeeded_with_trunk(pending, "CT700701")
    assert not Trunk.objects.exists()
    assert AuditRecord.objects.get(pk=pending.pk).status == AuditStatus.FAILED
    assert audit_chain_verify().ok


def test_a_username_recorded_already_is_left_as_it_is_and_the_attempt_still_finishes(
    tenant_a, alice
):
    earlier = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    first = _succeeded_with_trunk(earlier, "CT700702")
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    done = _succeeded_with_trunk(pending, "CT700702")
    assert AuditRecord.objects.get(pk=done.pk).status == AuditStatus.SUCCEEDED
    assert list(Trunk.objects.values_list("created_record_id", flat=True)) == [first.pk]
    assert audit_chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_finishing_on_the_head_the_insert_saw_is_one_statement_without_a_transaction_on_postgresql(
    tenant_a, alice, monkeypatch
):
    """PostgreSQL: the UPDATE and the Trunk's INSERT in one statement, sent outside a transaction
    (no BEGIN, no COMMIT: one round trip). SQLite: the two statements in one transaction."""
    from django.test.utils import CaptureQueriesContext

    audit_attempt(tenant=tenant_a, actor=alice)
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    opened = []

    def atomic(*args, **kwargs):
        opened.append(1)
        return transaction.atomic(*args, **kwargs)

    monkeypatch.setattr(writer, "transaction", types.SimpleNamespace(atomic=atomic))
    with CaptureQueriesContext(connection) as queries:
        _succeeded_with_trunk(pending, "CT700703")
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    sql = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(control)]
    if connection.vendor == "postgresql":
        assert (len(sql), opened) == (1, []), sql
        assert sql[0].startswith('WITH finished AS (UPDATE "trunks_auditrecord"')
    else:
        assert [s.split()[0] for s in sql] == ["UPDATE", "INSERT"], sql
        assert opened == [1]
    assert Trunk.objects.get().username == "CT700703"
    assert audit_chain_verify().ok
