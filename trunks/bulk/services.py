"""Bulk jobs: made from a checked file, confirmed, worked row by row by background workers, cancelled,
and their one result download. Each row is an ordinary trunk attempt (trunks.provisioning.services).

Each row is claimed exactly once: a short transaction takes the next ready row (SKIP LOCKED) and marks
it claimed; only after that commit does the worker call trunk_create, whose one-time token is the
row's own (`bulk:<job>:<row>`), so even a row somehow taken twice is sent at most once. A claimed row
never goes back to ready: after a crash its pending attempt is swept to unknown and the row follows.
"""

import csv
import io
import json
import logging
import math
import time
from datetime import timedelta

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from trunks.audit.writer import audit_event_record
from trunks.crazytel.errors import RateLimited
from trunks.crazytel.ratelimit import RateLimiter
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
from trunks.provisioning.messages import TrunkError
from trunks.provisioning.passwords import trunk_password_generate
from trunks.provisioning.services import trunk_create
from trunks.tenants.credentials import CredentialError, api_key_decrypt, fernet
from trunks.tenants.upstream import backend_default

from .checks import CheckedFile

logger = logging.getLogger(__name__)

SLICE_SECONDS = 30.0  # a task works this long, then enqueues its continuation
UNKNOWN_RUN_PAUSES = 3  # this many unknown outcomes in a row pause the job for a person
QUIET_AFTER = timedelta(minutes=2)  # a running job whose heartbeat is older is re-enqueued
PASSWORDS_KEPT = timedelta(hours=1)  # after the job ends, passwords not downloaded are erased


class BulkError(PortalError):
    """A bulk job cannot do what was asked (already downloaded, not yours, not ended…)."""


# --- passwords: encrypted bound to their job and row, decrypted only in memory -------------------


@sensitive_variables("password")
def _password_encrypt(*, job: BulkJob, index: int, password: str) -> str:
    payload = json.dumps({"job": str(job.uuid), "row": index, "password": password})
    return fernet().encrypt(payload.encode()).decode()


def _password_decrypt(*, job: BulkJob, row: BulkRow) -> str:
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
    _job_end_record(job)
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


def _job_end_record(job: BulkJob) -> None:
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


# --- the worker ------------------------------------------------------------------------------------


class _BulkLimiter(RateLimiter):
    """The tenant's shared limiter as a bulk slice holds it: `row_token_take()` takes a row's token
    at bulk's lower ceiling before the row is claimed, and pays for that row's create call (its
    acquire finds the token paid); any other call pays as usual, at the full ceiling."""

    paid = False

    def row_token_take(self) -> None:
        full, self.capacity = self.capacity, bulk_rate_ceiling()
        try:
            super().acquire(write=True)  # a create is a write; a 429's pause blocks it too
        finally:
            self.capacity = full
        self.paid = True

    def acquire(self, *, write: bool = False) -> None:
        if self.paid:
            self.paid = False
            return
        super().acquire(write=write)


def bulk_rate_ceiling() -> int:
    """Bulk's share of the per-minute budget: the rest stays free for people using the form."""
    limit = settings.CRAZYTEL_RATE_LIMIT_PER_MINUTE
    return max(1, limit - settings.BULK_RATE_RESERVE)


def _job_set(job: BulkJob, **fields) -> None:
    BulkJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


# What of the tenant a slice keeps for its whole run; a claim finds a row only while the tenant
# still has these values, so a deactivated tenant, a revoked or replaced key or a new base URL is
# seen by the next row without reading the tenant for every row.
_TENANT_HELD = ("is_active", "api_key_ciphertext", "base_url", "name")


def _row_claim(job: BulkJob, tenant: Tenant) -> BulkRow | None:
    """The next ready row, marked claimed (never ready again, but for a 429) — only while the job
    is running and its tenant is as `tenant` was read (_TENANT_HELD). None when there is no such
    row; the caller then reads the job and the tenant to see why (_job_no_row).

    One statement, committed on its own: UPDATE … WHERE id = (the first such row, locked with
    FOR UPDATE OF the row SKIP LOCKED on PostgreSQL; SQLite has one writer at a time) RETURNING the
    row. The lock covers the row only, never the job or the tenant joined to check them: a row
    lock held on those elsewhere (cancel locks the job) must not make SKIP LOCKED pass over rows."""
    if not _update_returning():
        return _row_claim_in_transaction(job, tenant)
    quote = connection.ops.quote_name
    features = connection.features
    lock = ""
    if features.has_select_for_update_skip_locked and features.has_select_for_update_of:
        lock = "FOR UPDATE OF r SKIP LOCKED"
    held = " AND ".join(f"t.{quote(name)} = %s" for name in _TENANT_HELD)
    sql = f"""
        UPDATE {quote(BulkRow._meta.db_table)}
        SET status = %s, claimed_at = %s, attempts = attempts + 1
        WHERE id = (
            SELECT r.id FROM {quote(BulkRow._meta.db_table)} r
            JOIN {quote(BulkJob._meta.db_table)} j ON j.id = r.job_id
            JOIN {quote(Tenant._meta.db_table)} t ON t.id = j.tenant_id
            WHERE r.job_id = %s AND r.status = %s AND j.status = %s AND {held}
            ORDER BY r.{quote("index")} LIMIT 1 {lock}
        )
        RETURNING id, job_id, {quote("index")}, data, password_ciphertext, status, claimed_at,
            attempts
    """  # noqa: S608 (names from the models, values as parameters)
    params = [
        BulkRowStatus.CLAIMED,
        connection.ops.adapt_datetimefield_value(timezone.now()),
        job.pk,
        BulkRowStatus.READY,
        BulkJobStatus.RUNNING,
        *(getattr(tenant, name) for name in _TENANT_HELD),
    ]
    # The whole result is read at once, so the statement (and SQLite's write lock) ends here.
    claimed = list(BulkRow.objects.raw(sql, params))
    return claimed[0] if claimed else None


def _update_returning() -> bool:
    """Whether the database returns rows from an UPDATE (PostgreSQL; SQLite from 3.35, when it
    also returns them from an INSERT)."""
    return connection.features.can_return_columns_from_insert


def _row_claim_in_transaction(job: BulkJob, tenant: Tenant) -> BulkRow | None:
    """_row_claim for a database that cannot return rows from an UPDATE: the same, in two
    statements of one short transaction."""
    held = {f"job__tenant__{name}": getattr(tenant, name) for name in _TENANT_HELD}
    with transaction.atomic():
        row = (
            BulkRow.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(job=job, status=BulkRowStatus.READY, job__status=BulkJobStatus.RUNNING, **held)
            .only("id", "job_id", "index", "data", "password_ciphertext", "attempts")
            .order_by("index")
            .first()
        )
        if row is None:
            return None
        row.status = BulkRowStatus.CLAIMED
        row.claimed_at = timezone.now()
        row.attempts += 1
        row.save(update_fields=["status", "claimed_at", "attempts"])
    return row


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

ROW_ATTEMPTS = 5  # a row answered 429 (or held back) is tried at most this many times


def _row_finish_from(row: BulkRow, record: AuditRecord, message: str = "") -> None:
    row.status = _ROW_STATUS[record.status]
    row.audit_record = record
    row.username = record.trunk_username
    row.error = (message or record.error_message)[:500] if row.status != "created" else ""
    row.save(update_fields=["status", "audit_record", "username", "error"])


def _row_not_done(record: AuditRecord) -> bool:
    """The attempt's answer is "not done, try later": Crazytel's 429, or the portal's limiter held
    it back. Nothing was created upstream (a 429 is a refusal; a held-back call was never sent)."""
    return record.error_category == "rate_limited" and record.status in (
        AuditStatus.FAILED,
        AuditStatus.NOT_SENT,
    )


def _row_requeue(row: BulkRow, record: AuditRecord) -> None:
    """Ready again, for a new attempt with a new token once the limiter's wait is over."""
    row.status = BulkRowStatus.READY
    row.audit_record = record
    row.error = (
        f"Attempt {row.attempts} of {ROW_ATTEMPTS} was not done ({record.error_message}); it "
        "will be sent again after the wait."
    )[:500]
    row.save(update_fields=["status", "audit_record", "error"])


@sensitive_variables("api_key")
def _limiter_for(tenant: Tenant) -> _BulkLimiter:
    """The slice's limiter for `tenant`'s key; BulkError when the tenant or its key cannot be used."""
    readiness = tenant.readiness
    if not readiness:
        raise BulkError(readiness.reason)
    try:
        api_key = api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext)
    except CredentialError as error:
        raise BulkError(f"The tenant's API key cannot be used: {error}") from None
    return _BulkLimiter(api_key=api_key, backend=backend_default(), max_wait=0, label=tenant.slug)


@sensitive_variables("password", "data")
def bulk_job_work(*, job_id: int, slice_seconds: float = SLICE_SECONDS) -> str:
    """Work `job_id` for up to `slice_seconds`. Returns what happened next: "ended", "paused",
    "continue" (more rows: the caller enqueues the continuation) or "wait:<seconds>".

    Per row: a token from the shared limiter, one claim (which also answers whether the job still
    runs and the tenant is unchanged), the create, the row's result. The tenant, its key and the
    limiter are read once per slice; the heartbeat is written every BULK_HEARTBEAT_SECONDS.
    """
    job = BulkJob.objects.select_related("tenant", "owner").get(pk=job_id)
    if job.status == BulkJobStatus.QUEUED:
        _job_set(job, status=BulkJobStatus.RUNNING, started_at=job.started_at or timezone.now())
    if job.status != BulkJobStatus.RUNNING:
        return "ended" if job.ended else "paused"
    tenant = job.tenant
    try:
        limiter = _limiter_for(tenant)
    except BulkError as error:
        return _job_stop(job, BulkJobStatus.STOPPED_AUTH, str(error))
    deadline = time.monotonic() + slice_seconds
    beat = -math.inf
    unknown_run = 0
    while True:
        now = time.monotonic()
        if now > deadline:
            return "continue"
        if now - beat >= settings.BULK_HEARTBEAT_SECONDS:
            _job_set(job, heartbeat_at=timezone.now())
            beat = now
        try:
            limiter.row_token_take()
        except RateLimited as error:
            return f"wait:{max(1, int(error.retry_after or 1))}"
        row = _row_claim(job, tenant)
        if row is None:
            outcome, fresh = _job_no_row(job, tenant)
            if fresh is None:
                return outcome
            tenant = fresh  # its key, URL or name changed: carry on with the new ones
            try:
                limiter = _limiter_for(tenant)
            except BulkError as error:
                return _job_stop(job, BulkJobStatus.STOPPED_AUTH, str(error))
            continue
        try:
            password = _password_decrypt(job=job, row=row)
            data = {**row.data, "password": password}
            result = trunk_create(
                actor=job.owner,
                tenant=tenant,
                data=data,
                request=None,
                submission_token=row_token(job, row.index, row.attempts),
                rate_limiter=limiter,
            )
        except (TrunkError, BulkError) as error:
            row.status = BulkRowStatus.FAILED
            row.error = f"Not sent: {error}"[:500]
            row.save(update_fields=["status", "error"])
            return _job_stop(job, BulkJobStatus.STOPPED_AUTH, str(error))
        finally:
            limiter.paid = False  # a token not spent by the call is not carried to another row
        if _row_not_done(result.record) and row.attempts < ROW_ATTEMPTS:
            # The limiter now blocks the key for the 429's wait: the next token waits for it.
            _row_requeue(row, result.record)
            continue
        _row_finish_from(row, result.record, result.message)
        if result.category == "rejected_key" or result.record.upstream_status == 401:
            return _job_stop(
                job,
                BulkJobStatus.STOPPED_AUTH,
                "Crazytel rejected the tenant's API key (401): an admin must set a new key.",
            )
        unknown_run = unknown_run + 1 if row.status == BulkRowStatus.UNKNOWN else 0
        if unknown_run >= UNKNOWN_RUN_PAUSES:
            _job_set(
                job,
                status=BulkJobStatus.PAUSED,
                paused_reason=(
                    f"{unknown_run} rows in a row had an unknown outcome: check the Crazytel "
                    "account and the audit log, then resume or cancel."
                ),
            )
            return "paused"


def _job_no_row(job: BulkJob, tenant: Tenant) -> tuple[str, Tenant | None]:
    """Why the claim found no row: the job stopped or paused, the tenant changed (a deactivated
    tenant or a removed key stops the job; a new key or URL is returned to carry on with), or no
    ready row is left (the job finishes once no row is still being sent)."""
    job.refresh_from_db(fields=["status"])
    if job.status != BulkJobStatus.RUNNING:
        return ("ended" if job.ended else "paused"), None
    fresh = Tenant.objects.get(pk=tenant.pk)
    if any(getattr(fresh, name) != getattr(tenant, name) for name in _TENANT_HELD):
        return "", fresh  # the caller reads it again (and stops if it cannot be used)
    return _job_maybe_finish(job), None


def _job_stop(job: BulkJob, status: str, reason: str) -> str:
    """End the job (`status`, `reason`): its ready rows are cancelled. Returns "ended"."""
    with transaction.atomic():
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if locked.ended:
            return "ended"
        locked.rows.filter(status=BulkRowStatus.READY).update(
            status=BulkRowStatus.CANCELLED, error="Not sent: the job stopped."
        )
        locked.status = status
        locked.paused_reason = reason[:300]
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "paused_reason", "finished_at"])
    _job_end_record(locked)
    return "ended"


def _job_maybe_finish(job: BulkJob) -> str:
    """No ready rows left: the job ends once no row is still being sent."""
    with transaction.atomic():
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if locked.ended:
            return "ended"
        if locked.rows.filter(status__in=[BulkRowStatus.READY, BulkRowStatus.CLAIMED]).exists():
            return "wait:5"  # another worker is still sending a row
        locked.status = BulkJobStatus.FINISHED
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at"])
    _job_end_record(locked)
    return "ended"


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
            _row_finish_from(row, record)
        # a pending attempt waits for the pending sweeper (then it is unknown, and so is the row)
    revived = 0
    quiet = BulkJob.objects.filter(
        status__in=[BulkJobStatus.RUNNING, BulkJobStatus.QUEUED], heartbeat_at__lt=cutoff
    )
    for job in quiet:
        _job_set(job, heartbeat_at=timezone.now())
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
                password = _password_decrypt(job=locked, row=row)
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
