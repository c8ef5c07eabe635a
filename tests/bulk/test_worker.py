"""Bulk jobs worked by real `manage.py worker` processes: every row accounted for, each created at
most once (checked against the fake Crazytel's own record), within the shared rate budget."""

import os

import pytest
from django.db import connection

from tests.factories import MembershipFactory, TenantFactory, UserFactory, tenant_key_set
from tests.tasks.conftest import wait_until
from trunks.bulk.checks import bulk_file_check
from trunks.bulk.services import bulk_job_confirm, bulk_job_create, bulk_jobs_revive
from trunks.crazytel.parsing import VerifiedNumber
from trunks.models import AuditRecord, BulkJob, BulkJobStatus, BulkRowStatus
from trunks.provisioning.numbers import VerifiedNumbers

from .conftest import NUMBER

# Scaled down so the test is quick: 12 calls per 3 s window for the key, bulk keeps 2 back.
RATE = {"CRAZYTEL_RATE_LIMIT_PER_MINUTE": "12", "CRAZYTEL_RATE_LIMIT_WINDOW": "3",
        "BULK_RATE_RESERVE": "2", "CRAZYTEL_TIMEOUT": "2"}  # fmt: skip


def _job(fake, rows: int) -> BulkJob:
    tenant = tenant_key_set(TenantFactory(slug="bulk"), "ct-bulk-key-0001", base_url=fake.url)
    user = MembershipFactory(user=UserFactory(username="bulker"), tenant=tenant).user
    text = "caller_id_number,description\n" + "".join(f"{NUMBER},Desk {i}\n" for i in range(rows))
    numbers = VerifiedNumbers(numbers=(VerifiedNumber(number=NUMBER, label=""),))
    checked = bulk_file_check(raw=text.encode(), name="desks.csv", numbers=numbers)
    assert checked.ok
    job = bulk_job_create(actor=user, tenant=tenant, checked=checked)
    return bulk_job_confirm(actor=user, job=job)


def _ended(job):
    job.refresh_from_db()
    return job.ended


def _accounted(job, fake) -> dict:
    rows = list(job.rows.select_related("audit_record"))
    assert all(r.status not in (BulkRowStatus.READY, BulkRowStatus.CLAIMED) for r in rows)
    created = {r.username: r.data["description"] for r in rows if r.status == "created"}
    # Everything the job says it created, the fake created, for the same row.
    for username, description in created.items():
        assert fake.created[username] == description
    # Each description (row) reached the fake at most once.
    sent = list(fake.created.values())
    assert len(sent) == len(set(sent))
    unknown = {r.data["description"] for r in rows if r.status == "unknown"}
    # What the fake created that the job does not know as created is among its unknown rows.
    assert set(sent) - set(created.values()) <= unknown
    tokens = [r.audit_record.submission_token for r in rows if r.audit_record_id]
    assert len(tokens) == len(set(tokens))
    return {s: sum(1 for r in rows if r.status == s) for s in BulkRowStatus.values}


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


def test_a_worker_process_creates_every_row_once(start_worker, fake_crazytel, monkeypatch):
    for k, v in RATE.items():
        monkeypatch.setenv(k, v)
    fake = fake_crazytel()
    job = _job(fake, 15)
    worker = start_worker("--no-scheduler")
    wait_until(lambda: _ended(job), what=f"the job to end\n{worker.output()}")
    counts = _accounted(job, fake)
    assert job.status == BulkJobStatus.FINISHED
    assert counts["created"] == 15 and len(fake.calls) == 15
    assert _max_in_window(fake.calls, 3.0) <= 12
    assert AuditRecord.objects.filter(bulk_row__job=job).count() == 15


@pytest.mark.postgres
def test_two_workers_with_faults_and_a_killed_worker_account_for_every_row(
    start_worker, fake_crazytel, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SKIP LOCKED between processes): DATABASE_URL=postgres://…")
    for k, v in RATE.items():
        monkeypatch.setenv(k, v)
    rows = 40
    fake = fake_crazytel({3: "500", 7: "drop-after", 11: "429", 19: "500", 23: "drop-after"})
    job = _job(fake, rows)
    first = start_worker("--no-scheduler")
    second = start_worker("--no-scheduler")
    wait_until(lambda: len(fake.calls) >= 10, what="the workers to start sending")
    first.process.kill()  # mid-job, maybe mid-call
    first.process.wait()
    replacement = start_worker("--no-scheduler")

    def settled():
        # What the scheduler would do every minute: settle rows the killed worker left claimed
        # and re-enqueue the job if its heartbeat went quiet (here: at once).
        from datetime import timedelta

        from trunks.audit.tasks import pending_attempts_expire

        pending_attempts_expire(older_than=timedelta(seconds=5))
        bulk_jobs_revive(quiet_after=timedelta(seconds=5))
        return _ended(job)

    wait_until(
        settled, timeout=120, what=f"the job to end\n{second.output()}{replacement.output()}"
    )
    counts = _accounted(job, fake)
    assert sum(counts.values()) == rows
    assert counts["created"] >= rows - 10, counts
    assert _max_in_window(fake.calls, 3.0) <= 12
    assert os.environ["CRAZYTEL_RATE_LIMIT_PER_MINUTE"] == "12"
