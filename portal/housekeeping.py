"""Housekeeping: records that grow without bound and are only useful for a while."""

from datetime import timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.utils import timezone


def axes_records_prune(*, older_than: timedelta) -> dict[str, int]:
    """Delete django-axes' login records older than `older_than`; return how many of each.

    Access and failure logs (a row per login) go after `older_than`. Failure counters
    (AccessAttempt) stop locking anyone after AXES_COOLOFF_TIME, so they go after the shorter of
    the two: never one that still counts.
    """
    now = timezone.now()
    attempts_age = min(older_than, settings.AXES_COOLOFF_TIME)
    deleted = {}
    for label, model, age in (
        ("access_logs", AccessLog, older_than),
        ("failure_logs", AccessFailureLog, older_than),
        ("attempts", AccessAttempt, attempts_age),
    ):
        count, _ = model.objects.filter(attempt_time__lt=now - age).delete()
        deleted[label] = count
    return deleted
