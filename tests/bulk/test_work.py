"""The bulk worker row by row: what a slice reads once (the tenant, its key, its limiter) and what a
row still guarantees without reading them again; a row answered 429 is tried again, boundedly."""

import json
import re
from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import tenant_key_set
from tests.trunk_fixtures import API_KEY_A, TRUNKS_URL, create_calls, created
from trunks.audit.selectors import audit_filterset
from trunks.audit.tasks import pending_attempts_expire
from trunks.audit.writer import audit_attempt_start
from trunks.bulk import work
from trunks.bulk.services import bulk_job_cancel, bulk_jobs_revive, row_token
from trunks.bulk.work import ROW_ATTEMPTS, bulk_job_work
from trunks.crazytel.client import API_KEY_HEADER, CrazytelClient
from trunks.crazytel.ratelimit import key_id, rate_limited_error
from trunks.models import (
    AuditRecord,
    AuditStatus,
    BulkJobStatus,
    BulkRowStatus,
    Tenant,
)
from trunks.tenants.upstream import backend_default, redis_client_from_cache

from .test_bulk import confirm, make_job

NEW_KEY = "ct-live-key-renewed-0003"
_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


@pytest.fixture
def numbers_ok(crazytel, keyed_a):
    return crazytel


def _answer_creates(mock, *, during_first=None, statuses=()):
    """Every create answers 200 (a new username), but for `statuses` (the first calls' answers:
    429 with Retry-After 1); `during_first()` runs while the first call is being answered."""
    calls = []

    def answer(request):
        calls.append(request)
        n = len(calls)
        if n == 1 and during_first:
            during_first()
        if n <= len(statuses):
            return statuses[n - 1], {"Retry-After": "1"}, json.dumps({"detail": "slow down"})
        return 200, {}, json.dumps(created(f"CT{n:06d}"))

    mock.add_callback(responses.POST, TRUNKS_URL, callback=answer)
    return calls


def _limiter_wait_over():
    """The 429's pause has passed: the key's shared limiter state (Redis or the database) is
    cleared."""
    backend_default().reset(key_id(API_KEY_A))


def _statuses(job):
    return list(job.rows.order_by("index").values_list("status", flat=True))


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries if not _TRANSACTION_CONTROL.match(q["sql"])]


def _job_statements(job, monkeypatch) -> tuple[list[str], int]:
    """The statements `bulk_job_work` sends for `job`, and how many of them trunk_create sent."""
    in_create = []
    create = work.trunk_create

    def counted_create(**kwargs):
        before = len(connection.queries)
        try:
            return create(**kwargs)
        finally:
            in_create.extend(connection.queries[before:])

    monkeypatch.setattr(work, "trunk_create", counted_create)
    with CaptureQueriesContext(connection) as queries:
        assert bulk_job_work(job_id=job.pk) == "ended"
    return _statements(queries), len(_statements(in_create))


def test_a_row_costs_the_job_a_token_a_claim_and_its_result_and_one_heartbeat_per_slice(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks, monkeypatch
):
    _answer_creates(numbers_ok)
    small = confirm(make_job(alice, keyed_a, 2), alice, django_capture_on_commit_callbacks)
    large = confirm(make_job(alice, keyed_a, 6), alice, django_capture_on_commit_callbacks)
    small_statements, small_in_create = _job_statements(small, monkeypatch)
    statements, in_create = _job_statements(large, monkeypatch)
    assert _statuses(large) == [BulkRowStatus.CREATED] * 6
    heartbeats = [s for s in statements if s.startswith("UPDATE") and "heartbeat_at" in s]
    assert len(heartbeats) == 1  # rows come faster than BULK_HEARTBEAT_SECONDS
    # Each row beside its create: the limiter's token (one Redis script, or one UPDATE in the
    # database backend), the claim and the row's result; nothing re-read per row.
    per_row = ((len(statements) - in_create) - (len(small_statements) - small_in_create)) / 4
    token = 0 if redis_client_from_cache() else 1
    assert per_row == 2 + token, statements


@pytest.mark.parametrize(
    "change",
    [{"is_active": False}, {"api_key_ciphertext": ""}],
    ids=["tenant deactivated", "key removed"],
)
def test_a_tenant_made_unusable_during_a_job_stops_it_before_the_next_row(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks, change
):
    def unusable():
        Tenant.objects.filter(pk=keyed_a.pk).update(**change)

    calls = _answer_creates(numbers_ok, during_first=unusable)
    job = confirm(make_job(alice, keyed_a, 3), alice, django_capture_on_commit_callbacks)
    assert bulk_job_work(job_id=job.pk) == "ended"
    job.refresh_from_db()
    assert job.status == BulkJobStatus.STOPPED_AUTH
    assert job.paused_reason  # says why (inactive, no key)
    assert len(calls) == 1
    assert _statuses(job) == ["created", "cancelled", "cancelled"]


def test_a_key_replaced_during_a_job_is_used_from_the_next_row(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks
):
    calls = _answer_creates(
        numbers_ok, during_first=lambda: tenant_key_set(Tenant.objects.get(pk=keyed_a.pk), NEW_KEY)
    )
    job = confirm(make_job(alice, keyed_a, 3), alice, django_capture_on_commit_callbacks)
    assert bulk_job_work(job_id=job.pk) == "ended"
    job.refresh_from_db()
    assert job.status == BulkJobStatus.FINISHED
    assert [c.headers[API_KEY_HEADER] == NEW_KEY for c in calls] == [False, True, True]


def test_cancel_during_a_row_lets_it_finish_and_sends_no_other(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks
):
    job = confirm(make_job(alice, keyed_a, 3), alice, django_capture_on_commit_callbacks)
    calls = _answer_creates(numbers_ok, during_first=lambda: bulk_job_cancel(job=job))
    assert bulk_job_work(job_id=job.pk) == "ended"
    job.refresh_from_db()
    assert job.status == BulkJobStatus.CANCELLED
    assert len(calls) == 1
    assert _statuses(job) == ["created", "cancelled", "cancelled"]


def test_a_row_answered_429_is_sent_again_after_the_wait_with_a_new_token(
    client, numbers_ok, keyed_a, alice, mallory, django_capture_on_commit_callbacks
):
    calls = _answer_creates(numbers_ok, statuses=(429,))
    job = confirm(make_job(alice, keyed_a, 2), alice, django_capture_on_commit_callbacks)
    # The 429 blocks the key for its Retry-After: the slice stops and comes back after it.
    assert bulk_job_work(job_id=job.pk) == "wait:1"
    first = job.rows.get(index=2)
    assert first.status == BulkRowStatus.READY and first.attempts == 1
    assert "sent again" in first.error
    refused = first.audit_record
    assert (refused.status, refused.upstream_status) == (AuditStatus.FAILED, 429)
    assert refused.submission_token == row_token(job, 2)
    _limiter_wait_over()
    assert bulk_job_work(job_id=job.pk) == "ended"
    first.refresh_from_db()
    assert first.status == BulkRowStatus.CREATED and first.attempts == 2 and first.error == ""
    assert first.audit_record.submission_token == f"bulk:{job.uuid}:2:2"
    assert first.audit_record.status == AuditStatus.SUCCEEDED
    assert [json.loads(c.body)["description"] for c in calls] == ["Desk 0", "Desk 0", "Desk 1"]
    # Both attempts of the row are in the job's audit log (the refused one by its token).
    in_log = audit_filterset(user=mallory, data={"job": str(job.uuid)}).qs
    assert refused in in_log and first.audit_record in in_log
    client.force_login(mallory)
    page = client.get(reverse("audit:list"), {"job": str(job.uuid)}).content.decode()
    assert "CT000002" in page and "busy" in page


def test_a_row_answered_429_every_time_fails_after_its_last_attempt(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks
):
    calls = _answer_creates(numbers_ok, statuses=(429,) * ROW_ATTEMPTS)
    job = confirm(make_job(alice, keyed_a, 1), alice, django_capture_on_commit_callbacks)
    for _ in range(ROW_ATTEMPTS):
        assert bulk_job_work(job_id=job.pk) == "wait:1"
        _limiter_wait_over()
    assert bulk_job_work(job_id=job.pk) == "ended"
    row = job.rows.get()
    assert row.status == BulkRowStatus.FAILED and row.attempts == ROW_ATTEMPTS
    assert "busy" in row.error
    assert len(calls) == ROW_ATTEMPTS
    tokens = AuditRecord.objects.filter(submission_token__startswith=f"bulk:{job.uuid}:")
    assert tokens.count() == ROW_ATTEMPTS


def test_a_row_held_back_by_the_portals_limiter_is_requeued_not_failed(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks, monkeypatch
):
    calls = _answer_creates(numbers_ok)
    job = confirm(make_job(alice, keyed_a, 1), alice, django_capture_on_commit_callbacks)
    create = CrazytelClient.create_sip_trunk
    held = []

    def held_back_once(client, payload):
        if not held:
            held.append(payload["description"])
            raise rate_limited_error("Held back by the breaker.", retry_after=3)
        return create(client, payload)

    monkeypatch.setattr(CrazytelClient, "create_sip_trunk", held_back_once)
    assert bulk_job_work(job_id=job.pk) == "ended"
    row = job.rows.get()
    assert row.status == BulkRowStatus.CREATED and row.attempts == 2
    first = AuditRecord.objects.get(submission_token=row_token(job, row.index))
    assert first.status == AuditStatus.NOT_SENT
    assert len(calls) == 1  # the held-back attempt never reached Crazytel


def test_a_retried_row_left_claimed_by_a_crash_is_settled_from_its_own_attempt(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks
):
    job = confirm(make_job(alice, keyed_a, 1), alice, django_capture_on_commit_callbacks)
    row = job.rows.get()
    # Its first attempt was answered 429; a worker claimed the second, recorded it, and died.
    long_ago = timezone.now() - timedelta(hours=1)
    job.rows.filter(pk=row.pk).update(status=BulkRowStatus.CLAIMED, claimed_at=long_ago, attempts=2)
    audit_attempt_start(
        tenant=keyed_a,
        actor=alice,
        request=None,
        data=row.data,
        submission_token=row_token(job, row.index, 2),
    )
    AuditRecord.objects.filter(status=AuditStatus.PENDING).update(started_at=long_ago)
    pending_attempts_expire(older_than=timedelta(minutes=10))
    with django_capture_on_commit_callbacks(execute=False):
        bulk_jobs_revive()
    row.refresh_from_db()
    assert row.status == BulkRowStatus.UNKNOWN
    assert row.audit_record.submission_token == f"bulk:{job.uuid}:{row.index}:2"
    assert bulk_job_work(job_id=job.pk) == "ended"
    assert create_calls(numbers_ok) == []


def test_without_update_returning_a_row_is_claimed_in_a_short_transaction(
    numbers_ok, keyed_a, alice, django_capture_on_commit_callbacks, monkeypatch
):
    calls = _answer_creates(numbers_ok, statuses=(429,))
    job = confirm(make_job(alice, keyed_a, 2), alice, django_capture_on_commit_callbacks)
    monkeypatch.setattr(work, "_update_returning", lambda: False)
    assert bulk_job_work(job_id=job.pk) == "wait:1"
    _limiter_wait_over()
    assert bulk_job_work(job_id=job.pk) == "ended"
    assert _statuses(job) == ["created", "created"]
    assert job.rows.get(index=2).attempts == 2
    assert len(calls) == 3
