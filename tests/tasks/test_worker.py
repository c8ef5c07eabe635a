"""Real `manage.py worker` processes take tasks from the queue: each task once, the sweeper on time."""

from datetime import timedelta

import pytest
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.factories import MembershipFactory, TenantFactory, UserFactory
from trunks.audit.writer import audit_attempt_start
from trunks.models import AuditRecord, AuditStatus

from .conftest import wait_until
from .jobs import run_recorded


def _finished(ids) -> bool:
    return DBTaskResult.objects.filter(id__in=ids).finished().count() == len(ids)


def test_a_worker_process_runs_an_enqueued_task_and_the_pending_sweeper_then_stops_on_sigterm(
    start_worker, tmp_path
):
    """One worker process for all three (a start costs a Django set-up): it runs the task, its
    scheduler runs the sweeper, and once idle again a SIGTERM ends it cleanly (exit 0)."""
    tenant = TenantFactory(slug="sweep")
    user = MembershipFactory(user=UserFactory(username="sweeper"), tenant=tenant).user
    pending = audit_attempt_start(
        tenant=tenant, actor=user, request=None, data={}, submission_token=None
    )
    AuditRecord.objects.filter(pk=pending.pk).update(started_at=timezone.now() - timedelta(hours=1))
    worker = start_worker("--scheduler-tick", "0.1")
    record = tmp_path / "runs.txt"
    result = run_recorded.enqueue(str(record), "only")

    wait_until(lambda: _finished([result.id]), what="the worker to finish the task")
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL, worker.output()
    assert result.return_value == worker.process.pid
    assert record.read_text() == f"only {worker.process.pid}\n"

    def expired():
        pending.refresh_from_db()
        return pending.status == AuditStatus.UNKNOWN

    wait_until(expired, what=f"the sweeper to expire the pending attempt\n{worker.output()}")
    assert pending.error_category == "abandoned"
    assert worker.stop() == 0, worker.output()


@pytest.mark.postgres
def test_two_workers_never_run_one_task_twice(start_worker, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SKIP LOCKED between processes): DATABASE_URL=postgres://…")
    workers = [start_worker("--no-scheduler"), start_worker("--no-scheduler")]
    record = tmp_path / "runs.txt"
    keys = [f"task-{n}" for n in range(60)]
    ids = [run_recorded.enqueue(str(record), key).id for key in keys]

    wait_until(lambda: _finished(ids), what="both workers to finish every task")

    lines = [line.split() for line in record.read_text().splitlines()]
    assert sorted(key for key, _ in lines) == sorted(keys)  # every task ran, none twice
    assert {int(pid) for _, pid in lines} == {w.process.pid for w in workers}  # both took part
    results = DBTaskResult.objects.filter(id__in=ids)
    assert {r.status for r in results} == {TaskResultStatus.SUCCESSFUL}
    assert all(len(r.worker_ids) == 1 for r in results)  # each claimed once
