"""The project's own tasks: the one task every scheduled job runs through, and housekeeping."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.tasks import task
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from portal.housekeeping import axes_records_prune
from portal.models import ScheduledRun
from portal.schedules import schedule_get


@task
def scheduled_job_run(name: str) -> Any:
    """Run the schedule `name` from portal/schedules.py. Its arguments come from the registry, not
    from the queue, so they need not be JSON and never sit in the task table."""
    schedule = schedule_get(name)
    return import_string(schedule.function)(**schedule.kwargs)


def task_results_prune(*, older_than: timedelta) -> int:
    """Delete finished task results and scheduler claims older than `older_than`. Returns how many."""
    cutoff = timezone.now() - older_than
    results, _ = DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).delete()
    claims, _ = ScheduledRun.objects.filter(due_at__lt=cutoff).delete()
    return results + claims


def axes_records_prune_retained() -> dict[str, int]:
    """django-axes' records older than AXES_RECORDS_RETENTION_DAYS (the daily schedule's job)."""
    return axes_records_prune(older_than=timedelta(days=settings.AXES_RECORDS_RETENTION_DAYS))


@task
def prune_axes_records(older_than_days: int | None = None) -> dict[str, int]:
    """`manage.py axes_prune` as a task, for enqueueing by hand."""
    if older_than_days is None:
        return axes_records_prune_retained()
    return axes_records_prune(older_than=timedelta(days=older_than_days))
