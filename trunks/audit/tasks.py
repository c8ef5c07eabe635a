"""Background work, as Django tasks (django.tasks) so a worker or a scheduler can run it."""

from datetime import timedelta

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from trunks.models import AuditRecord, AuditStatus

from .writer import audit_attempt_finish

ABANDONED_MESSAGE = (
    "The portal stopped before Crazytel's answer was recorded, so whether the trunk was created "
    "is unknown. Check the Crazytel account, then resolve this attempt."
)


def pending_attempts_expire(*, older_than: timedelta) -> int:
    """Turn attempts left pending (by a crashed or killed process) into `unknown`. Returns how many."""
    cutoff = timezone.now() - older_than
    expired = 0
    stale = AuditRecord.objects.filter(status=AuditStatus.PENDING, started_at__lt=cutoff)
    for pk in stale.values_list("pk", flat=True).iterator(chunk_size=500):
        with transaction.atomic():
            record = AuditRecord.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if record is None or record.status != AuditStatus.PENDING:
                continue  # finished meanwhile, or another sweeper holds it
            audit_attempt_finish(
                record=record,
                status=AuditStatus.UNKNOWN,
                error_category="abandoned",
                error_message=ABANDONED_MESSAGE,
            )
            expired += 1
    return expired


@task
def expire_pending_attempts(older_than_seconds: int = 600) -> int:
    """The periodic task form of `manage.py audit_expire_pending` (enqueue it from a scheduler)."""
    return pending_attempts_expire(older_than=timedelta(seconds=older_than_seconds))
