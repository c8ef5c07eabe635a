"""Every periodic job of the portal, in one place: each worker's scheduler enqueues a job when due.

A job is a plain function (a service), named by its dotted path so this module imports nothing of
the apps; `manage.py check` proves every path imports. To add one, append a Schedule here.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Schedule:
    name: str
    function: str  # dotted path to a plain function, called as function(**kwargs) in a worker
    every: timedelta  # periods are aligned to the epoch, so every worker agrees on them
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # not JSON-bound: never queued


SCHEDULES: tuple[Schedule, ...] = (
    # Attempts a crashed process left pending become `unknown` for a manager to resolve. Also
    # `manage.py audit_expire_pending`; harmless to run twice (each record is finished once).
    Schedule(
        name="audit-expire-pending",
        function="trunks.audit.tasks.pending_attempts_expire",
        every=timedelta(minutes=5),
        kwargs={"older_than": timedelta(minutes=10)},
    ),
    # Finished task results and the scheduler's own claims, after two weeks.
    Schedule(
        name="task-results-prune",
        function="portal.tasks.task_results_prune",
        every=timedelta(days=1),
        kwargs={"older_than": timedelta(days=14)},
    ),
    # Bulk jobs: settle rows a crashed worker left claimed, re-enqueue jobs whose worker went quiet
    # (the same 5 minutes as the sweeper: a period shorter than that would re-run inside its test).
    Schedule(
        name="bulk-jobs-revive",
        function="trunks.bulk.services.bulk_jobs_revive",
        every=timedelta(minutes=5),
    ),
    # Bulk results' passwords not downloaded within an hour of the job's end are erased.
    Schedule(
        name="bulk-passwords-erase",
        function="trunks.bulk.services.bulk_passwords_erase",
        every=timedelta(minutes=5),
    ),
    # django-axes' access logs and spent failure counters (they grow without bound otherwise).
    Schedule(
        name="axes-records-prune",
        function="portal.tasks.axes_records_prune_retained",
        every=timedelta(days=1),
    ),
    # Each tenant's audit chain head, signed, to the log and AUDIT_CHECKPOINT_PATH: records removed
    # from the end of a chain after a checkpoint are caught by `verify_audit --checkpoints`.
    Schedule(
        name="audit-checkpoint",
        function="trunks.audit.checkpoints.audit_checkpoints_write",
        every=timedelta(minutes=15),
    ),
)


def schedule_get(name: str, *, schedules: tuple[Schedule, ...] = SCHEDULES) -> Schedule:
    for schedule in schedules:
        if schedule.name == name:
            return schedule
    raise LookupError(f"No schedule named {name!r} in portal/schedules.py.")
