"""Attempts left pending by a crashed process become `unknown`, once, and stay in the chain."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from trunks.audit.chain import record_hash_compute
from trunks.audit.tasks import expire_pending_attempts
from trunks.audit.writer import audit_attempt_start
from trunks.models import AuditRecord, AuditStatus


def _pending(tenant, actor, age: timedelta) -> AuditRecord:
    record = audit_attempt_start(
        tenant=tenant,
        actor=actor,
        request=None,
        data={"caller_id_number": "61298765432"},
        submission_token=None,
    )
    AuditRecord.objects.filter(pk=record.pk).update(started_at=timezone.now() - age)
    return record


def test_it_marks_only_old_pending_attempts_unknown(tenant_a, alice):
    old = _pending(tenant_a, alice, timedelta(minutes=30))
    fresh = _pending(tenant_a, alice, timedelta(seconds=5))
    out = StringIO()
    call_command("audit_expire_pending", "--older-than", "600", stdout=out)
    assert "1 pending attempt(s)" in out.getvalue()
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == AuditStatus.UNKNOWN
    assert old.error_category == "abandoned"
    assert "unknown" in old.error_message
    assert old.record_hash == record_hash_compute(old)
    assert fresh.status == AuditStatus.PENDING


def test_running_it_twice_changes_nothing_more(tenant_a, alice):
    _pending(tenant_a, alice, timedelta(hours=1))
    call_command("audit_expire_pending", stdout=StringIO())
    out = StringIO()
    call_command("audit_expire_pending", stdout=out)
    assert out.getvalue().startswith("0 pending")


def test_it_refuses_a_threshold_that_could_catch_live_calls(db):
    with pytest.raises(SystemExit):
        call_command(
            "audit_expire_pending", "--older-than", "5", stdout=StringIO(), stderr=StringIO()
        )


def test_the_periodic_task_does_the_same(tenant_a, alice, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    record = _pending(tenant_a, alice, timedelta(hours=2))
    result = expire_pending_attempts.enqueue(older_than_seconds=600)
    assert result.return_value == 1
    record.refresh_from_db()
    assert record.status == AuditStatus.UNKNOWN


def test_an_attempt_pending_for_months_is_expired_with_its_duration_capped(tenant_a, alice):
    """A sweeper that did not run for 25+ days meets durations past a 32-bit integer of ms: the
    column's ceiling is recorded (PostgreSQL would refuse the real figure) and the sweep goes on."""
    stale = _pending(tenant_a, alice, timedelta(days=90))
    call_command("audit_expire_pending", stdout=StringIO())
    stale.refresh_from_db()
    assert stale.status == AuditStatus.UNKNOWN
    assert stale.duration_ms == 2**31 - 1
    assert stale.record_hash == record_hash_compute(stale)
