"""Bulk jobs from a spreadsheet and their rows."""

import uuid

from django.conf import settings
from django.db import models

from .tenants import Tenant


class BulkJobStatus(models.TextChoices):
    DRAFT = "draft", "Checked, waiting for confirmation"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"
    STOPPED_AUTH = "stopped_auth", "Stopped: API key rejected"
    FINISHED = "finished", "Finished"


BULK_JOB_ENDED = (BulkJobStatus.CANCELLED, BulkJobStatus.STOPPED_AUTH, BulkJobStatus.FINISHED)


class BulkJob(models.Model):
    """One uploaded spreadsheet: who, for which tenant, which file (name and SHA-256), its state."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="bulk_jobs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bulk_jobs"
    )
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=BulkJobStatus.choices, default=BulkJobStatus.DRAFT
    )
    paused_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    results_downloaded_at = models.DateTimeField(null=True, blank=True)
    # The audit event recording the job (written when it is confirmed, and its final counts).
    audit_record = models.OneToOneField(
        "AuditRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_job"
    )

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"bulk job {self.uuid} ({self.file_name})"

    @property
    def ended(self) -> bool:
        return self.status in BULK_JOB_ENDED


class BulkRowStatus(models.TextChoices):
    READY = "ready", "Waiting"
    CLAIMED = "claimed", "Sending"
    CREATED = "created", "Created"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Outcome unknown"
    CANCELLED = "cancelled", "Cancelled"


class BulkRow(models.Model):
    """One row of a job: its checked values (never the password), the password encrypted until the
    one download, and what became of it. A claimed row goes back to ready only when its attempt
    ended with Crazytel's (or the portal's limiter's) answer that nothing was sent or created: a
    429. Each attempt has its own one-time token (trunks.bulk.services.row_token)."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="rows")
    index = models.PositiveIntegerField()  # the spreadsheet's row number (header = 1)
    data = models.JSONField(default=dict)
    password_ciphertext = models.TextField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=BulkRowStatus.choices, default=BulkRowStatus.READY
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Attempts made (each a trunk attempt of its own token); more than one only after a 429.
    attempts = models.PositiveSmallIntegerField(default=0)
    audit_record = models.OneToOneField(
        "AuditRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_row"
    )
    username = models.CharField(max_length=20, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="bulk_row_job_index_unique")
        ]
        indexes = [models.Index(fields=["job", "status", "index"])]

    def __str__(self) -> str:
        return f"row {self.index} of {self.job_id}"
