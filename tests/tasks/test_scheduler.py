"""The schedule registry: each period of each job is enqueued once, however many workers look."""

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection, connections
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from portal.checks import schedules_check
from portal.models import ScheduledRun
from portal.scheduler import schedule_period_start, schedules_enqueue_due
from portal.schedules import SCHEDULES, Schedule, schedule_get
from portal.tasks import scheduled_job_run, task_results_prune
from trunks.audit.writer import audit_attempt_start
from trunks.models import AuditRecord, AuditStatus

NOON = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
SWEEPER = schedule_get("audit-expire-pending")


def _queued(name: str):
    return DBTaskResult.objects.filter(
        task_path=scheduled_job_run.module_path, args_kwargs__args=[name]
    )


def test_the_schedule_enqueues_the_sweeper(db):
    assert "audit-expire-pending" in schedules_enqueue_due(now=NOON)
    queued = _queued("audit-expire-pending").get()
    assert queued.status == TaskResultStatus.READY
    run = ScheduledRun.objects.get(name="audit-expire-pending")
    assert run.task_result_id == str(queued.id)
    assert run.due_at == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_period_is_enqueued_once_then_again_in_the_next_period(db):
    schedules_enqueue_due(now=NOON)
    assert schedules_enqueue_due(now=NOON + timedelta(minutes=4)) == []
    assert _queued("audit-expire-pending").count() == 1
    assert "audit-expire-pending" in schedules_enqueue_due(now=NOON + timedelta(minutes=5))
    assert _queued("audit-expire-pending").count() == 2


def test_periods_are_aligned_to_the_epoch_so_every_machine_agrees():
    daily = Schedule(name="d", function="x.y", every=timedelta(days=1))
    assert schedule_period_start(SWEEPER, now=NOON) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert schedule_period_start(daily, now=NOON) == datetime(2026, 3, 2, tzinfo=UTC)


def test_the_scheduled_job_expires_old_pending_attempts(tenant_a, alice):
    record = audit_attempt_start(
        tenant=tenant_a, actor=alice, request=None, data={}, submission_token=None
    )
    AuditRecord.objects.filter(pk=record.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert scheduled_job_run.call("audit-expire-pending") == 1
    record.refresh_from_db()
    assert record.status == AuditStatus.UNKNOWN


def test_pruning_keeps_recent_results_and_claims(db, settings):
    schedules_enqueue_due(now=NOON)  # a claim and a queued result per schedule, all long ago
    DBTaskResult.objects.update(status=TaskResultStatus.SUCCESSFUL, finished_at=NOON)
    schedules_enqueue_due()  # this period's: recent
    assert task_results_prune(older_than=timedelta(days=14)) == 2 * len(SCHEDULES)
    assert ScheduledRun.objects.count() == len(SCHEDULES)
    assert DBTaskResult.objects.count() == len(SCHEDULES)


def test_every_schedule_names_a_function_that_imports():
    assert schedules_check() == []


def test_the_check_names_a_schedule_whose_function_moved(monkeypatch):
    moved = Schedule(
        name="moved", function="trunks.gone.pending_attempts_expire", every=SWEEPER.every
    )
    monkeypatch.setattr("portal.schedules.SCHEDULES", (*SCHEDULES, moved, moved))
    ids = sorted(error.id for error in schedules_check())
    assert ids == ["portal.E020", "portal.E021", "portal.E021"]


def test_an_unknown_tasks_backend_stops_start_up():
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env={"PATH": "/usr/bin:/bin", "TASKS_BACKEND": "celery", "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "TASKS_BACKEND must be one of ['database', 'dummy', 'immediate']" in done.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_schedulers_racing_in_several_workers_enqueue_a_period_once():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (concurrent inserts on one unique key): DATABASE_URL=…")
    racers = 4
    start = threading.Barrier(racers)
    outcomes = []

    def race():
        try:
            start.wait(timeout=30)
            outcomes.append(schedules_enqueue_due(now=NOON))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == racers
    assert sorted(name for names in outcomes for name in names) == sorted(s.name for s in SCHEDULES)
    assert ScheduledRun.objects.count() == len(SCHEDULES)
    assert DBTaskResult.objects.count() == len(SCHEDULES)
