"""The project's own records: which period of each periodic job has been enqueued."""

from django.db import models
from django.utils import timezone


class ScheduledRun(models.Model):
    """One period of one schedule, enqueued once: the unique (name, due_at) is the guard that lets
    any number of workers run the scheduler without enqueuing a period twice."""

    name = models.CharField(max_length=100)
    due_at = models.DateTimeField(help_text="Start of the period this run belongs to.")
    enqueued_at = models.DateTimeField(default=timezone.now)
    task_result_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "due_at"], name="scheduled_run_once_per_period")
        ]
        ordering = ["-due_at"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.due_at:%Y-%m-%d %H:%M:%S}"
