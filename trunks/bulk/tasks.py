"""The bulk job's task: its only argument is the job id; it works a slice, then re-enqueues itself."""

from datetime import timedelta

from django.tasks import task
from django.utils import timezone

from .work import bulk_job_work


@task
def bulk_job_run(job_id: int) -> str:
    outcome = bulk_job_work(job_id=job_id)
    if outcome == "continue":
        bulk_job_run.enqueue(job_id)
    elif outcome.startswith("wait:"):
        # Over bulk's share of the budget (or a 429's pause): come back after the wait rather than
        # sleeping in a worker.
        seconds = int(outcome.split(":", 1)[1])
        bulk_job_run.using(run_after=timezone.now() + timedelta(seconds=seconds)).enqueue(job_id)
    return outcome
