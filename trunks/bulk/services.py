"""Bulk jobs: made from a checked file, confirmed, cancelled or resumed, their rows' results, the
schedules that settle what a crashed worker left, and the one result download. The worker itself,
which sends the rows, is trunks.bulk.work.
"""

import csv
import io
import json
import logging
from datetime import timedelta

from cryptography.fernet import InvalidToken
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from trunks.audit.writer import audit_event_record
from trunks.errors import PortalError
from trunks.models import (
    AuditKind,
    AuditRecord,
    AuditStatus,
    BulkJob,
    BulkJobStatus,
    BulkRow,
    BulkRowStatus,
    Tenant,
)
from trunks.provisioning.passwords import trunk_password_generate
from trunks.tenants.credentials import fernet

from .checks import CheckedFile

logger = logging.getLogger(__name__)

QUIET_AFTER = timedelta(minutes=2)  # a running job whose heartbeat is older is re-enqueued
PASSWORDS_KEPT = timedelta(hours=1)  # after the job ends, passwords not downloaded are erased


class BulkError(PortalError):
    """A bulk job cannot do what was asked (already downloaded, not yours, not ended…)."""


# --- passwords: encrypted bound to their job and row, decrypted only in memory -------------------


@sensitive_variables("password")
def _password_encrypt(*, job: BulkJob, index: int, password: str) -> str:
    payload = json.dumps({"job": str(job.uuid), "row": index, "password": password})
    return fernet().encrypt(payload.encode()).decode()


def row_password_decrypt(*, job: BulkJob, row: BulkRow) -> str:
    try:
        payload = json.loads(fernet().decrypt(row.password_ciphertext.encode()))
    except (InvalidToken, ValueError, TypeError, AttributeError):
        raise BulkError("A row's password cannot be decrypted with the configured keys.") from None
    if payload.get("job") != str(job.uuid) or payload.get("row") != row.index:
        raise BulkError("A row's password does not belong to this row.")
    return str(payload["password"])


# --- making, confirming, cancelling ---------------------------------------------------------------


@transaction.atomic
def bulk_job_create(*, actor, tenant: Tenant, checked: CheckedFile) -> BulkJob:
    """A draft job from a file with no errors; each row's password (typed, or generated with the
    trunk-password generator) encrypted at once."""
    if not checked.ok:
        raise BulkError("Only a file without errors can become a job.")
    job = BulkJob.objects.create(
        tenant=tenant,
        owner=actor,
        file_name=checked.name,
        file_sha256=checked.sha256,
        row_count=len(checked.rows),
    )
    BulkRow.objects.bulk_create(
        BulkRow(
            job=job,
            index=row.index,
            data=row.data,
            password_ciphertext=_password_encrypt(
                job=job, index=row.index, password=row.password or trunk_password_generate()
            ),
        )
        for row in checked.rows
    )
    return job


def bulk_job_confirm(*, actor, job: BulkJob, request=None) -> BulkJob:
    """Queue a draft job (recorded in the audit log) and hand it to the workers."""
    from .tasks import bulk_job_run

    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.status != BulkJobStatus.DRAFT:
            return job
        job.audit_record = audit_event_record(
            kind=AuditKind.BULK_JOB,
            tenant=job.tenant,
            actor=actor,
            request=request,
            data={
                "bulk_job": str(job.uuid),
                "file_name": job.file_name,
                "file_sha256": job.file_sha256,
                "rows": job.row_count,
            },
        )
        job.status = BulkJobStatus.QUEUED
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "audit_record", "heartbeat_at"])
        transaction.on_commit(lambda: bulk_job_run.enqueue(job.pk))
    return job


def bulk_job_cancel(*, job: BulkJob) -> BulkJob:
    """Stop the rows not yet sent (a row being sent finishes as it would)."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.ended:
            return job
        job.rows.filter(status=BulkRowStatus.READY).update(
            status=BulkRowStatus.CANCELLED, error="Cancelled before it was sent."
        )
        job.status = BulkJobStatus.CANCELLED
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
    job_end_record(job)
    return job


def bulk_job_resume(*, job: BulkJob) -> BulkJob:
    from .tasks import bulk_job_run

    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.status != BulkJobStatus.PAUSED:
            return job
        job.status = BulkJobStatus.RUNNING
        job.paused_reason = ""
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "paused_reason", "heartbeat_at"])
        transaction.on_commit(lambda: bulk_job_run.enqueue(job.pk))
    return job


def bulk_job_counts(job: BulkJob) -> dict[str, int]:
    from django.db.models import Count

    counts = {s.value: 0 for s in BulkRowStatus}
    for row in job.rows.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def job_end_record(job: BulkJob) -> None:
    """The job's final counts, in the audit log beside the record of its start."""
    if job.audit_record_id is None:
        return
    audit_event_record(
        kind=AuditKind.BULK_JOB,
        tenant=job.tenant,
        actor=job.owner,
        related=job.audit_record,
        data={
            "bulk_job": str(job.uuid),
            "file_name": job.file_name,
            "file_sha256": job.file_sha256,
            "rows": job.row_count,
            "ended": job.status,
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "counts": bulk_job_counts(job),
        },
    )


# --- what the worker (trunks.bulk.work) and the schedules below share ---------------------------


def job_set(job: BulkJob, **fields) -> None:
    BulkJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


def row_token(job: BulkJob, index: int, attempt: int = 1) -> str:
    """The one-time token of a row's `attempt`-th attempt (a second one only after a 429)."""
    token = f"bulk:{job.uuid}:{index}"
    return token if attempt <= 1 else f"{token}:{attempt}"


_ROW_STATUS = {
    AuditStatus.SUCCEEDED: BulkRowStatus.CREATED,
    AuditStatus.FAILED: BulkRowStatus.FAILED,
    AuditStatus.UNKNOWN: BulkRowStatus.UNKNOWN,
    AuditStatus.PENDING: BulkRowStatus.UNKNOWN,
    # Held back by the portal's limiter inside the call: nothing sent (requeued while it may be).
    AuditStatus.NOT_SENT: BulkRowStatus.FAILED,
}


def row_finish_from(row: BulkRow, record: AuditRecord, message: str = "") -> None:
    row.status = _ROW_STATUS[record.status]
    row.audit_record = record
    row.username = record.trunk_username
    row.error = (message or record.error_message)[:500] if row.status != "created" else ""
    row.save(update_fields=["status", "audit_record", "username", "error"])


# --- the schedules: stalled jobs, rows left claimed by a crash, passwords past their hour ------


def bulk_jobs_revive(*, quiet_after: timedelta = QUIET_AFTER) -> int:
    """Settle rows a crashed worker left claimed (from their audit attempt: never re-sent), and
    re-enqueue running jobs whose heartbeat went quiet. Returns how many jobs were enqueued."""
    from .tasks import bulk_job_run

    cutoff = timezone.now() - quiet_after
    for row in BulkRow.objects.filter(
        status=BulkRowStatus.CLAIMED, claimed_at__lt=cutoff
    ).select_related("job"):
        token = row_token(row.job, row.index, row.attempts)
        record = AuditRecord.objects.filter(submission_token=token).first()
        if record is None:
            # The attempt is recorded before anything is sent: no record, nothing was sent.
            row.status = BulkRowStatus.FAILED
            row.error = "Not sent: the worker stopped before sending it."
            row.save(update_fields=["status", "error"])
        elif record.status != AuditStatus.PENDING:
            row_finish_from(row, record)
        # a pending attempt waits for the pending sweeper (then it is unknown, and so is the row)
    revived = 0
    quiet = BulkJob.objects.filter(
        status__in=[BulkJobStatus.RUNNING, BulkJobStatus.QUEUED], heartbeat_at__lt=cutoff
    )
    for job in quiet:
        job_set(job, heartbeat_at=timezone.now())
        bulk_job_run.enqueue(job.pk)
        revived += 1
    return revived


def bulk_passwords_erase(*, older_than: timedelta = PASSWORDS_KEPT) -> int:
    """Erase the passwords of jobs that ended more than `older_than` ago."""
    cutoff = timezone.now() - older_than
    return BulkRow.objects.filter(
        job__finished_at__lt=cutoff, password_ciphertext__isnull=False
    ).update(password_ciphertext=None)


# --- the one download ----------------------------------------------------------------------------

RESULT_COLUMNS = ("row", "status", "username", "password", "error")


@sensitive_variables("password", "out")
def bulk_results_download(*, actor, job: BulkJob) -> str:
    """The result CSV, once: the job locked, refused if downloaded already, every password erased
    in the same transaction."""
    from trunks.crazytel.contract import TRUNK_FIELD_NAMES

    names = [n for n in TRUNK_FIELD_NAMES if n != "password"]
    with transaction.atomic():
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if locked.owner_id != actor.pk:
            raise BulkError("Only the person who uploaded the file can download its results.")
        if not locked.ended:
            raise BulkError("The results can be downloaded when the job has ended.")
        if locked.results_downloaded_at is not None:
            raise BulkError(
                "The results were downloaded already, on "
                f"{timezone.localtime(locked.results_downloaded_at):%Y-%m-%d %H:%M}; the passwords "
                "were erased then. Set new passwords on the trunks if that file is lost."
            )
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([*RESULT_COLUMNS, *names])
        for row in locked.rows.order_by("index").iterator(chunk_size=500):
            password = ""
            if row.status == BulkRowStatus.CREATED and row.password_ciphertext:
                password = row_password_decrypt(job=locked, row=row)
            writer.writerow(
                [row.index, row.status, row.username, password, row.error]
                + [_cell(row.data.get(n, "")) for n in names]
            )
        locked.results_downloaded_at = timezone.now()
        locked.save(update_fields=["results_downloaded_at"])
        locked.rows.update(password_ciphertext=None)
    return out.getvalue()


def _cell(value) -> str:
    text = "true" if value is True else "false" if value is False else str(value or "")
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
