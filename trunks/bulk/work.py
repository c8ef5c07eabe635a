"""The bulk worker: a task works a slice of a job (~30 s), row by row, then its continuation is
enqueued (trunks.bulk.tasks). Each row is an ordinary trunk attempt (trunks.provisioning.services).

Each row is claimed exactly once: one statement takes the next ready row (SKIP LOCKED) and marks it
claimed, only while the job still runs and its tenant is as the slice read it; only after that
commit does the worker call trunk_create, whose one-time token is the row's own
(`bulk:<job>:<row>`, services.row_token), so even a row somehow taken twice is sent at most once. A
claimed row becomes ready again only after an attempt Crazytel answered 429 (or the portal's limiter
held back): nothing was created; after a crash its pending attempt is swept to unknown and the row
follows.
"""

import math
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from trunks.crazytel.errors import RateLimited
from trunks.crazytel.ratelimit import RateLimiter
from trunks.models import (
    AuditRecord,
    AuditStatus,
    BulkJob,
    BulkJobStatus,
    BulkRow,
    BulkRowStatus,
    Tenant,
)
from trunks.provisioning.messages import TrunkError
from trunks.provisioning.services import trunk_create
from trunks.tenants.credentials import CredentialError, api_key_decrypt
from trunks.tenants.upstream import backend_default

from .services import (
    BulkError,
    job_end_record,
    job_set,
    row_finish_from,
    row_password_decrypt,
    row_token,
)

SLICE_SECONDS = 30.0  # a task works this long, then enqueues its continuation

UNKNOWN_RUN_PAUSES = 3  # this many unknown outcomes in a row pause the job for a person


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


ROW_ATTEMPTS = 5  # a row answered 429 (or held back) is tried at most this many times


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
        job_set(job, status=BulkJobStatus.RUNNING, started_at=job.started_at or timezone.now())
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
            job_set(job, heartbeat_at=timezone.now())
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
            password = row_password_decrypt(job=job, row=row)
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
        row_finish_from(row, result.record, result.message)
        if result.category == "rejected_key" or result.record.upstream_status == 401:
            return _job_stop(
                job,
                BulkJobStatus.STOPPED_AUTH,
                "Crazytel rejected the tenant's API key (401): an admin must set a new key.",
            )
        unknown_run = unknown_run + 1 if row.status == BulkRowStatus.UNKNOWN else 0
        if unknown_run >= UNKNOWN_RUN_PAUSES:
            job_set(
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
    job_end_record(locked)
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
    job_end_record(locked)
    return "ended"
