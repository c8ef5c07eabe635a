"""`manage.py worker`: runs queued tasks (django-tasks-db's db_worker) and the periodic-job scheduler.

Start as many as you like, on any machine that reaches the portal's database: each task runs once
(the queue row is locked with SKIP LOCKED), each period of a schedule is enqueued once.
"""

import os

from django.conf import settings
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from portal.runtime import process_settle
from portal.scheduler import SchedulerThread


class Command(DbWorkerCommand):
    help = (
        "Run a background worker: queued tasks, and (unless --no-scheduler) the periodic jobs of "
        "portal/schedules.py when due. Any number may run, on any machine."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--no-scheduler",
            action="store_false",
            dest="scheduler",
            help="Only run queued tasks; enqueue no periodic jobs.",
        )
        parser.add_argument(
            "--scheduler-tick",
            type=float,
            default=None,
            help="Seconds between looks for due periodic jobs (default: TASKS_SCHEDULER_TICK).",
        )

    def handle(self, *args, scheduler: bool, scheduler_tick: float | None, **options) -> None:
        # With --reload the parent process only watches files; the child runs the worker.
        in_worker_process = not options["reload"] or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true"
        if scheduler and in_worker_process:
            SchedulerThread(tick=scheduler_tick or settings.TASKS_SCHEDULER_TICK).start()
        if in_worker_process:
            process_settle()  # out of the garbage collector's way (portal/runtime.py)
        super().handle(*args, **options)
