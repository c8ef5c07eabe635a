"""Tamper evidence: the per-tenant hash chain, `verify_audit`, and the PostgreSQL append-only trigger."""

import io
import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from tests.factories import audit_attempt
from trunks.audit.chain import record_hash_compute
from trunks.audit.writer import audit_attempt_finish, audit_event_record
from trunks.models import AuditKind, AuditRecord, AuditStatus

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="The append-only trigger exists on PostgreSQL only; run with "
    "DATABASE_URL=postgres://... to test it.",
)


def _verify() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _verify_fails() -> tuple[str, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", stdout=io.StringIO(), stderr=err)
    return str(excinfo.value), err.getvalue()


def _tamper(sql: str, params: list) -> None:
    """Change the table behind the application's back (on PostgreSQL with the trigger off)."""
    with connection.cursor() as cursor:
        if ON_POSTGRES:
            # Run the test transaction's deferred FK checks first: ALTER TABLE refuses otherwise.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "ALTER TABLE trunks_auditrecord DISABLE TRIGGER trunks_auditrecord_append_only"
            )
        cursor.execute(sql, params)
        if ON_POSTGRES:
            cursor.execute(
                "ALTER TABLE trunks_auditrecord ENABLE TRIGGER trunks_auditrecord_append_only"
            )


@pytest.fixture
def chained(tenant_a, tenant_b, alice, bob, adam):
    records = [
        audit_attempt(tenant=tenant_a, actor=alice),
        audit_attempt(tenant=tenant_a, actor=alice, status="failed", error_message="HTTP 422"),
        audit_event_record(
            kind=AuditKind.MEMBER_ADDED, tenant=tenant_a, actor=adam, data={"member": "alice"}
        ),
        audit_attempt(tenant=tenant_a, actor=alice, status="unknown"),
        audit_attempt(tenant=tenant_b, actor=bob),
    ]
    audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    return records


def test_each_final_record_links_to_the_previous_one_of_its_tenant(chained):
    a = [r for r in chained if r.tenant.slug == "alpha"]
    assert [r.chain_seq for r in a] == [1, 2, 3, 4]
    assert a[0].prev_hash == ""
    for previous, record in itertools.pairwise(a):
        assert record.prev_hash == previous.record_hash
    b = [r for r in chained if r.tenant.slug == "bravo"]
    assert b[0].chain_seq == 1  # a chain per tenant


def test_verify_audit_passes_and_prints_the_counts(chained):
    out = _verify()
    assert "OK: 2 tenant chain(s), 5 sealed record(s) verified, 1 pending." in out


def test_verify_audit_catches_a_field_changed_behind_the_applications_back(chained):
    victim = chained[1]
    _tamper("UPDATE trunks_auditrecord SET error_message = %s WHERE id = %s", ["fine", victim.pk])
    message, details = _verify_fails()
    assert "1 of 2 tenant chain(s) broken" in message
    assert f"record #{victim.pk} (position 2)" in details
    assert "'Alpha Telecom'" in details
    assert "no longer matches record_hash" in details


def test_verify_audit_catches_a_recomputed_hash_by_the_broken_link(chained):
    # A careful forger recomputes the altered record's own hash: the next record's link breaks.
    victim = AuditRecord.objects.get(pk=chained[0].pk)
    victim.description = "changed"
    forged = record_hash_compute(victim)
    _tamper(
        "UPDATE trunks_auditrecord SET description = %s, record_hash = %s WHERE id = %s",
        ["changed", forged, victim.pk],
    )
    _message, details = _verify_fails()
    assert f"record #{chained[1].pk} (position 2)" in details
    assert "does not match the previous record's hash" in details


def test_verify_audit_catches_a_deleted_record(chained):
    _tamper("DELETE FROM trunks_auditrecord WHERE id = %s", [chained[2].pk])
    _message, details = _verify_fails()
    assert "position 3 is missing (next is 4)" in details


def test_verify_audit_catches_a_pending_attempt_completed_outside_the_application(tenant_a, alice):
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    _tamper("UPDATE trunks_auditrecord SET status = 'succeeded' WHERE id = %s", [pending.pk])
    _message, details = _verify_fails()
    assert f"record #{pending.pk}" in details
    assert "final (succeeded) but not in the chain" in details


def test_verify_audit_checks_one_tenant_on_request(chained):
    out = io.StringIO()
    call_command("verify_audit", "--tenant", "bravo", stdout=out)
    assert "1 tenant chain(s), 1 sealed record(s)" in out.getvalue()
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("verify_audit", "--tenant", "nope")


def test_verify_audit_streams_in_chunks(chained, django_assert_max_num_queries):
    # Small chunks: many fetches, the same result (memory bound by the chunk, not the log).
    out = io.StringIO()
    call_command("verify_audit", "--chunk-size", "100", stdout=out)
    assert "5 sealed record(s)" in out.getvalue()


def test_hash_is_the_same_before_saving_and_after_reading_back(tenant_a, alice):
    sydney = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=ZoneInfo("Australia/Sydney"))
    record = audit_attempt(tenant=tenant_a, actor=alice, at=sydney)
    fresh = AuditRecord.objects.get(pk=record.pk)
    assert record_hash_compute(fresh) == record.record_hash == fresh.record_hash


def test_hash_survives_json_numbers_and_ipv6_normalisation(tenant_a, adam):
    event = audit_event_record(
        kind=AuditKind.CONNECTION_TESTED,
        tenant=tenant_a,
        actor=adam,
        data={"balance": 12.0, "ratio": 0.25, "nested": {"list": [1, 2.0, "x"]}},
    )
    event_ip = AuditRecord(
        **{f.attname: getattr(event, f.attname) for f in AuditRecord._meta.fields}
    )
    event_ip.client_ip = "2001:0DB8:0000::0001"
    assert record_hash_compute(event_ip) == record_hash_compute(
        AuditRecord(
            **{
                **{f.attname: getattr(event, f.attname) for f in AuditRecord._meta.fields},
                "client_ip": "2001:db8::1",
            }
        )
    )
    assert record_hash_compute(AuditRecord.objects.get(pk=event.pk)) == event.record_hash


def test_deleting_a_user_keeps_their_records_and_the_chain(chained, alice):
    alice_records = [r.pk for r in chained if r.actor_username == "alice"]
    alice.delete()
    kept = AuditRecord.objects.filter(pk__in=alice_records)
    assert kept.count() == len(alice_records)
    assert set(kept.values_list("actor_id", flat=True)) == {None}
    assert set(kept.values_list("actor_username", flat=True)) == {"alice"}
    assert "OK:" in _verify()


def test_audit_generate_builds_valid_chains(db):
    out = io.StringIO()
    call_command("audit_generate", "--count", "250", "--tenants", "3", "--days", "10", stdout=out)
    assert "Generated 250 audit records for 3 tenant(s)" in out.getvalue()
    assert AuditRecord.objects.count() == 250
    statuses = set(AuditRecord.objects.values_list("status", flat=True))
    assert {"succeeded", "failed"} <= statuses
    assert AuditStatus.PENDING not in statuses
    # Running again appends to the same chains.
    call_command("audit_generate", "--count", "30", "--tenants", "3", stdout=io.StringIO())
    assert "OK: 3 tenant chain(s), 280 sealed record(s) verified" in _verify()


def test_audit_generate_refuses_nonsense(db):
    with pytest.raises(CommandError, match="must be positive"):
        call_command("audit_generate", "--count", "0")


# --- PostgreSQL: the database itself refuses changes ----------------------------------------------


def _refused(sql, params):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


@pytest.mark.postgres
@needs_postgres
def test_update_of_a_final_record_through_sql_fails(chained):
    _refused("UPDATE trunks_auditrecord SET status = 'failed' WHERE id = %s", [chained[0].pk])
    _refused("UPDATE trunks_auditrecord SET description = 'x' WHERE id = %s", [chained[3].pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=chained[2].pk).update(error_message="edited")
    assert AuditRecord.objects.get(pk=chained[0].pk).status == "succeeded"


@pytest.mark.postgres
@needs_postgres
def test_delete_through_sql_fails_final_or_pending(chained):
    _refused("DELETE FROM trunks_auditrecord WHERE id = %s", [chained[0].pk])
    pending = AuditRecord.objects.get(status=AuditStatus.PENDING)
    _refused("DELETE FROM trunks_auditrecord WHERE id = %s", [pending.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=chained[1].pk).delete()
    assert AuditRecord.objects.count() == 6


@pytest.mark.postgres
@needs_postgres
def test_completing_a_pending_record_works_once(chained):
    pending = AuditRecord.objects.get(status=AuditStatus.PENDING)
    done = audit_attempt_finish(
        record=pending, status=AuditStatus.SUCCEEDED, trunk_username="CT0000001"
    )
    assert AuditRecord.objects.get(pk=done.pk).status == "succeeded"
    # A second completion is refused by the writer, and by the database underneath it.
    with pytest.raises(ValueError, match="final already"):
        audit_attempt_finish(record=pending, status=AuditStatus.FAILED)
    _refused("UPDATE trunks_auditrecord SET status = 'failed' WHERE id = %s", [pending.pk])
    assert "OK:" in _verify()


@pytest.mark.postgres
@needs_postgres
def test_the_trigger_exists_and_is_enabled(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'trunks_auditrecord_append_only'"
        )
        assert cursor.fetchone() == ("O",)


@pytest.mark.postgres
@needs_postgres
def test_only_nulling_the_actor_is_allowed_on_a_final_record(chained):
    _refused(
        "UPDATE trunks_auditrecord SET actor_id = NULL, description = 'x' WHERE id = %s",
        [chained[0].pk],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE trunks_auditrecord SET actor_id = NULL WHERE id = %s", [chained[0].pk]
        )
    assert AuditRecord.objects.get(pk=chained[0].pk).actor_id is None


def test_old_timestamps_do_not_confuse_the_chain(tenant_a, alice):
    # Sealing order, not start time, decides the chain: an attempt started long ago that
    # finishes now comes after records started later.
    first = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    second = audit_attempt(tenant=tenant_a, actor=alice)
    done = audit_attempt_finish(record=first, status=AuditStatus.FAILED)
    assert done.chain_seq == second.chain_seq + 1
    assert done.started_at < second.started_at + timedelta(seconds=1)
    assert "OK:" in _verify()


def test_a_writer_whose_chain_position_was_taken_meanwhile_seals_at_the_next(
    tenant_a, alice, monkeypatch
):
    """Two writers read the same last record: the database lets one take the position, and the
    other reads the chain's head again and follows it (no fork, no gap, no lost record)."""
    from trunks.audit import writer

    first = audit_attempt(tenant=tenant_a, actor=alice)
    pending = writer.audit_attempt_start(
        tenant=tenant_a, actor=alice, request=None, data={}, submission_token=None
    )
    real_seal = writer._seal
    raced = []

    def seal_from_a_stale_read(record):
        if raced:
            return real_seal(record)
        # The first read of the chain's head happened before another writer appended `other`.
        raced.append(first.chain_seq + 1)
        record.chain_seq, record.prev_hash = first.chain_seq + 1, first.record_hash
        record.record_hash = record_hash_compute(record)

    audit_event_record(kind=AuditKind.MEMBER_ADDED, tenant=tenant_a, actor=alice)
    monkeypatch.setattr(writer, "_seal", seal_from_a_stale_read)
    done = audit_attempt_finish(record=pending, status=AuditStatus.SUCCEEDED)

    other = AuditRecord.objects.get(kind=AuditKind.MEMBER_ADDED)
    assert raced == [first.chain_seq + 1]
    assert other.chain_seq == first.chain_seq + 1 and other.prev_hash == first.record_hash
    stored = AuditRecord.objects.get(pk=done.pk)
    assert stored.status == AuditStatus.SUCCEEDED
    assert stored.chain_seq == other.chain_seq + 1 and stored.prev_hash == other.record_hash
    assert stored.record_hash == record_hash_compute(stored)
    assert "OK:" in _verify()


def test_finishing_an_attempt_already_final_is_refused_and_changes_nothing(tenant_a, alice):
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    done = audit_attempt_finish(record=pending, status=AuditStatus.SUCCEEDED)
    with pytest.raises(ValueError, match="final already"):
        audit_attempt_finish(record=pending, status=AuditStatus.FAILED, error_message="late")
    stored = AuditRecord.objects.get(pk=pending.pk)
    assert (stored.status, stored.error_message, stored.chain_seq) == (
        AuditStatus.SUCCEEDED,
        "",
        done.chain_seq,
    )
    assert AuditRecord.objects.filter(tenant=tenant_a, chain_seq__isnull=False).count() == 1
    assert "OK:" in _verify()


# --- the head the pending INSERT saw (audit_attempt_start → audit_attempt_finish) ---------------


def test_the_pending_insert_returns_the_chains_head_in_the_same_statement(tenant_a, alice):
    from django.test.utils import CaptureQueriesContext

    assert audit_attempt(tenant=tenant_a, actor=alice, status="pending")._chain_head is None
    last = audit_attempt(tenant=tenant_a, actor=alice)
    with CaptureQueriesContext(connection) as queries:
        pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    statements = [q["sql"] for q in queries.captured_queries if "trunks_auditrecord" in q["sql"]]
    assert [s.split()[0] for s in statements] == ["INSERT"], statements  # in the test's savepoint
    assert pending._chain_head == (last.chain_seq, last.record_hash)


@pytest.mark.parametrize("guess", ["an older record", "a wrong hash", "a position not there"])
def test_a_head_sealed_past_since_the_pending_insert_costs_a_read_never_the_chain(
    tenant_a, alice, guess
):
    first = audit_attempt(tenant=tenant_a, actor=alice)
    second = audit_attempt(tenant=tenant_a, actor=alice)
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    pending._chain_head = {
        "an older record": (first.chain_seq, first.record_hash),
        "a wrong hash": (second.chain_seq, "0" * 64),
        "a position not there": (second.chain_seq + 5, second.record_hash),
    }[guess]
    done = audit_attempt_finish(record=pending, status=AuditStatus.SUCCEEDED)
    assert (done.chain_seq, done.prev_hash) == (second.chain_seq + 1, second.record_hash)
    stored = AuditRecord.objects.get(pk=done.pk)
    assert stored.record_hash == record_hash_compute(stored) == done.record_hash
    assert "OK:" in _verify()


def test_an_attempt_finishes_after_another_sealed_since_its_pending_insert(tenant_a, alice):
    """The head its INSERT saw is no longer the head: the finish reads it and seals after it."""
    earlier = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    later = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    first = audit_attempt_finish(record=later, status=AuditStatus.FAILED)
    done = audit_attempt_finish(record=earlier, status=AuditStatus.SUCCEEDED)
    assert (done.chain_seq, done.prev_hash) == (first.chain_seq + 1, first.record_hash)
    assert "OK:" in _verify()


def test_the_head_the_pending_insert_saw_is_used_when_it_is_the_head(tenant_a, alice):
    from django.test.utils import CaptureQueriesContext

    last = audit_attempt(tenant=tenant_a, actor=alice)
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    with CaptureQueriesContext(connection) as queries:
        done = audit_attempt_finish(record=pending, status=AuditStatus.FAILED)
    statements = [q["sql"] for q in queries.captured_queries if "trunks_auditrecord" in q["sql"]]
    assert [s.split()[0] for s in statements] == ["UPDATE"], statements
    assert (done.chain_seq, done.prev_hash) == (last.chain_seq + 1, last.record_hash)
    assert "OK:" in _verify()


def test_a_final_attempt_is_refused_whatever_head_it_guesses(tenant_a, alice):
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    done = audit_attempt_finish(record=pending, status=AuditStatus.SUCCEEDED)
    for guess in [None, (done.chain_seq, done.record_hash)]:
        pending._chain_head = guess
        with pytest.raises(ValueError, match="final already"):
            audit_attempt_finish(record=pending, status=AuditStatus.FAILED)
    assert AuditRecord.objects.get(pk=pending.pk).status == AuditStatus.SUCCEEDED
    assert "OK:" in _verify()


def test_an_attempt_costs_the_cache_one_write_once_final_and_no_read(
    tenant_a, alice, monkeypatch, django_capture_on_commit_callbacks
):
    """The head comes from the database (the pending INSERT), so the writer reads nothing from the
    cache; the figures computed from records are dropped by one write, after the commit."""
    from django.core.cache import cache

    from trunks.audit import cache as audit_cache

    calls = []

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(cache, name)

    monkeypatch.setattr(audit_cache, "cache", Counting())
    audit_attempt(tenant=tenant_a, actor=alice)
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    calls.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        audit_attempt_finish(record=pending, status=AuditStatus.SUCCEEDED)
        assert calls == []  # nothing before the commit
    assert (len(callbacks), calls) == (1, ["set_many"])
