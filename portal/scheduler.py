"""The scheduler each worker runs beside its task loop: enqueues the periodic jobs that are due.

Every worker runs one, so a job is never missed while any worker is up. Each period of each
schedule is claimed by inserting a ScheduledRun row under a unique (name, due_at) constraint, in
the same transaction as the enqueue: whichever worker inserts first enqueues; the others hit the
constraint and move on. With N workers a job is enqueued once per period, not N times.
"""

import logging
import math
import threading
from datetime import UTC, datetime

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from portal.models import ScheduledRun
from portal.schedules import SCHEDULES, Schedule
from portal.tasks import scheduled_job_run

logger = logging.getLogger(__name__)


def schedule_period_start(schedule: Schedule, *, now: datetime) -> datetime:
    """The start of the period `now` falls in, aligned to the epoch (the same on every machine)."""
    seconds = schedule.every.total_seconds()
    return datetime.fromtimestamp(math.floor(now.timestamp() / seconds) * seconds, tz=UTC)


def schedules_enqueue_due(
    *, now: datetime | None = None, schedules: tuple[Schedule, ...] = SCHEDULES
) -> list[str]:
    """Enqueue every schedule whose current period has no run yet. Returns the names enqueued."""
    now = now or timezone.now()
    enqueued = []
    for schedule in schedules:
        due_at = schedule_period_start(schedule, now=now)
        if ScheduledRun.objects.filter(name=schedule.name, due_at=due_at).exists():
            continue  # the common case, without provoking an IntegrityError every tick
        try:
            with transaction.atomic():
                run = ScheduledRun.objects.create(name=schedule.name, due_at=due_at)
                result = scheduled_job_run.enqueue(schedule.name)
                run.task_result_id = str(result.id)
                run.save(update_fields=["task_result_id"])
        except IntegrityError:
            continue  # another worker claimed this period first
        logger.info("Enqueued %s for the period starting %s", schedule.name, due_at.isoformat())
        enqueued.append(schedule.name)
    return enqueued


class SchedulerThread(threading.Thread):
    """Ticks every `tick` seconds until the process ends (a daemon: it never holds a shutdown)."""

    def __init__(self, *, tick: float):
        super().__init__(name="scheduler", daemon=True)
        self.tick = tick
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            try:
                schedules_enqueue_due()
            except Exception:
                logger.exception("Scheduler tick failed; trying again in %s s", self.tick)
            finally:
                connections.close_all()  # this thread's own connections
            if self.stopping.wait(self.tick):
                return

    def stop(self) -> None:
        self.stopping.set()
