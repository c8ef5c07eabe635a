"""The audit log: one record per attempt or change, in its tenant's hash chain."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .tenants import Tenant


class AuditKind(models.TextChoices):
    TRUNK_CREATE = "trunk_create", "Trunk created"
    TENANT_CREATED = "tenant_created", "Tenant created"
    TENANT_UPDATED = "tenant_updated", "Tenant changed"
    KEY_SET = "key_set", "API key set"
    KEY_REPLACED = "key_replaced", "API key replaced"
    MEMBER_ADDED = "member_added", "Member added"
    MEMBER_REMOVED = "member_removed", "Member removed"
    MEMBER_ROLE_CHANGED = "member_role_changed", "Member role changed"
    CONNECTION_TESTED = "connection_tested", "Connection tested"
    OUTCOME_RESOLVED = "outcome_resolved", "Unknown outcome resolved"
    # Changes to a trunk the portal made (trunks.lifecycle).
    TRUNK_UPDATED = "trunk_updated", "Trunk settings changed"
    TRUNK_SUSPENDED = "trunk_suspended", "Trunk suspended"
    TRUNK_ENABLED = "trunk_enabled", "Trunk enabled"
    TRUNK_PASSWORD_CHANGED = "trunk_password_changed", "Trunk password changed"
    MEMBER_INVITED = "member_invited", "Member invited"
    INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
    INVITATION_DECLINED = "invitation_declined", "Invitation declined"
    INVITATION_WITHDRAWN = "invitation_withdrawn", "Invitation withdrawn"
    MEMBER_PASSWORD_RESET = "member_password_reset", "Member's password reset"
    MEMBER_UNLOCKED = "member_unlocked", "Member unlocked"
    BULK_JOB = "bulk_job", "Bulk job"


class AuditStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Unknown"
    # Held back by the portal itself (its rate limit or circuit breaker): nothing went upstream.
    NOT_SENT = "not_sent", "Not sent"


class AuditRecord(models.Model):
    """One trunk-creation attempt or one admin event. Append-only: see trunks.audit.writer.

    A trunk attempt is written `pending` before the upstream call and completed exactly once after
    it. Once final, a record never changes; it joins its tenant's hash chain when it becomes final.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=30, choices=AuditKind.choices)
    # No single-column indexes on tenant and actor: the composite indexes below lead with them.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="audit_records", db_index=False
    )
    tenant_name = models.CharField(max_length=100)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_records",
        db_index=False,
    )
    # Kept as text so the record survives the user's deletion.
    actor_username = models.CharField(max_length=150, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    # Every submitted field but the password; or an admin event's details. Never a secret.
    data = models.JSONField(default=dict, blank=True)
    # Denormalised from `data` for filtering and free-text search.
    caller_id_number = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=255, blank=True)

    status = models.CharField(
        max_length=10, choices=AuditStatus.choices, default=AuditStatus.PENDING
    )
    upstream_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_category = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    trunk_username = models.CharField(max_length=16, blank=True)
    trunk_id = models.CharField(max_length=64, blank=True)
    # The upstream response with any password-like key removed.
    response = models.JSONField(null=True, blank=True)

    # The form's one-time token: a second POST of it finds this record instead of a second trunk.
    submission_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # A retry of an unknown attempt, or the resolution of one, points at it.
    related = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="followups"
    )

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    # Tamper evidence: position in the tenant's chain, and the hashes (set when final).
    chain_seq = models.PositiveBigIntegerField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    record_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        # Every list query orders by (-started_at, -id) and pages by a keyset on that pair, so each
        # filter has an index ending in it (trunks.audit.paging). Free-text search uses
        # trigram indexes that exist on PostgreSQL only (migration 0004).
        indexes = [
            models.Index(fields=["tenant", "-started_at", "-id"], name="audit_tenant_started"),
            models.Index(fields=["-started_at", "-id"], name="audit_started"),
            models.Index(
                fields=["tenant", "status", "-started_at", "-id"], name="audit_tenant_status"
            ),
            models.Index(fields=["status", "-started_at", "-id"], name="audit_status"),
            models.Index(fields=["actor", "-started_at", "-id"], name="audit_actor"),
            # One person's records of one status (the log's "Who" and "Status" filters together):
            # read in order instead of filtering the person's every record (issue 17).
            models.Index(
                fields=["actor", "status", "-started_at", "-id"], name="audit_actor_status"
            ),
            models.Index(fields=["tenant", "kind", "-started_at", "-id"], name="audit_tenant_kind"),
            models.Index(fields=["kind", "-started_at", "-id"], name="audit_kind"),
            models.Index(fields=["trunk_username"], name="audit_trunk_username"),
            # What became of an unknown outcome (its resolution, its first successful retry): the
            # log's follow-up subqueries find a record's follow-ups of one kind in order here.
            # Without it SQLite walked `audit_kind` (every trunk attempt) for each unknown row
            # on a page, 90% of the page's CPU at 20,000 records (issue 17). Only follow-ups
            # are in it, so other writes do not pay for it.
            models.Index(
                fields=["related", "kind", "started_at", "id"],
                condition=Q(related__isnull=False),
                name="audit_related_kind",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "chain_seq"],
                condition=Q(chain_seq__isnull=False),
                name="audit_chain_seq_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.tenant_name} · {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status != AuditStatus.PENDING
