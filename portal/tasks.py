"""The portal's own background work, as Django tasks: a scheduler enqueues them periodically."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from portal.housekeeping import axes_records_prune


@task
def prune_axes_records(older_than_days: int | None = None) -> dict[str, int]:
    """The periodic form of `manage.py axes_prune` (daily is plenty)."""
    days = settings.AXES_RECORDS_RETENTION_DAYS if older_than_days is None else older_than_days
    return axes_records_prune(older_than=timedelta(days=days))
