"""The portal's data: tenants and who belongs to them, the audit log of everything done, and the
shared rate-limit state of each Crazytel key when there is no Redis. Data only, plus properties
that read one model (a tenant's readiness, a role's rank)."""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    """A member's role in one tenant. Roles nest: a manager may do what staff do, an admin both."""

    STAFF = "staff", "Staff"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        """1 for staff, 2 for managers, 3 for admins: the order the roles nest in."""
        return list(Role).index(self) + 1

    def includes(self, other: "Role | str") -> bool:
        """Whether this role may do what `other` may (an admin includes a manager)."""
        return self.rank >= Role(other).rank

    @classmethod
    def at_least(cls, min_role: "Role | str") -> list["Role"]:
        """`min_role` and every role above it."""
        return [role for role in cls if role.includes(min_role)]

    @classmethod
    def best(cls, roles) -> "Role | None":
        """The highest of `roles` (values or members; unknown ones ignored), or None."""
        known = [cls(r) for r in roles if r in cls.values]
        return max(known, key=lambda role: role.rank, default=None)


@dataclass(frozen=True)
class TenantReadiness:
    """Whether staff may create trunks for a tenant now, and if not, why (for a person to read)."""

    ready: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ready


class Tenant(models.Model):
    """A team with its own Crazytel account and API key."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    is_active = models.BooleanField(default=True)
    base_url = models.URLField(
        "Crazytel base URL",
        blank=True,
        help_text="Leave empty to use the portal's default Crazytel API URL.",
    )
    # The API key, encrypted (trunks.tenants.credentials). Never the plaintext; never shown again.
    api_key_ciphertext = models.TextField(blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    api_key_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    api_key_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    # The last connection check (a balance call) and what it found.
    connection_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    connection_ok = models.BooleanField(null=True, blank=True, editable=False)
    connection_message = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_ciphertext)

    @property
    def api_key_masked(self) -> str:
        return f"••••{self.api_key_last4}" if self.has_api_key else ""

    @property
    def effective_base_url(self) -> str:
        return self.base_url or settings.CRAZYTEL_API_BASE_URL

    @property
    def readiness(self) -> TenantReadiness:
        """Can trunks be created for this tenant? Inactive tenants and tenants without a key cannot.

        A failing connection does not block the form (a new attempt tells staff what Crazytel
        says), but the page warns about it.
        """
        if not self.is_active:
            return TenantReadiness(
                False,
                f"{self.name} is deactivated, so no trunks can be created for it. "
                "Ask one of its admins to activate it again.",
            )
        if not self.has_api_key:
            return TenantReadiness(
                False,
                f"{self.name} has no Crazytel API key yet, so no trunks can be created for it. "
                "Ask one of its admins to set the key.",
            )
        return TenantReadiness(True, "")


class Membership(models.Model):
    """A user's role in one tenant. A user may belong to several tenants with different roles."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")
        ]
        ordering = ["tenant__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Invitation(models.Model):
    """A tenant admin's invitation of a username: the person with that username accepts or declines
    it when they next sign in (trunks.tenants.invitations).

    Kept by username, not by user, so that inviting a name nobody has looks exactly like inviting
    someone of another tenant: the admin learns nothing about who exists elsewhere.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "username"], name="invitation_tenant_username_unique"
            )
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username} invited to {self.tenant} ({self.role})"


class PasswordChangeRequired(models.Model):
    """The user's password was chosen by someone else (an admin, a command): until they set their
    own, they reach no page but "set your password" (portal.password_change)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_change_required"
    )
    since = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} must set a password"


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
            models.Index(fields=["tenant", "kind", "-started_at", "-id"], name="audit_tenant_kind"),
            models.Index(fields=["kind", "-started_at", "-id"], name="audit_kind"),
            models.Index(fields=["trunk_username"], name="audit_trunk_username"),
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


class RateLimitBucket(models.Model):
    """The shared Crazytel rate-limit state of one API key, when there is no Redis
    (trunks.tenants.upstream).

    `key` is an HMAC of the API key, never the key. Rows are only read and written under a row lock.
    """

    key = models.CharField(max_length=64, primary_key=True)
    # Unix times of the grants still inside the window, oldest first.
    grants = models.JSONField(default=list)
    # After a 429: no call before this Unix time. `backoff_level` grows with 429s without Retry-After.
    blocked_until = models.FloatField(default=0)
    backoff_level = models.PositiveSmallIntegerField(default=0)
    last_429_at = models.FloatField(default=0)
    # The circuit breaker: consecutive upstream 5xx, and no call before `breaker_until`.
    failures = models.PositiveIntegerField(default=0)
    breaker_until = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"rate limit {self.key[:12]}…"


class TrunkState(models.TextChoices):
    """Whether the portal's copy of a trunk is what Crazytel holds."""

    CONFIRMED = "confirmed", "Confirmed"
    # A change was sent and its answer lost: `requested` holds what was asked.
    UNCONFIRMED = "unconfirmed", "Unconfirmed change"
    # Crazytel answered 404 for the trunk's id.
    MISSING = "missing", "Missing upstream"


class Trunk(models.Model):
    """A trunk created through the portal, with its settings as last known (every documented
    field of trunks.crazytel.contract.TRUNK_FIELDS but the password, which is never kept).

    Written by trunks.lifecycle only: created in the transaction that finalises a successful
    create (or a resolution "created"), changed in the one that finalises a confirmed change.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="trunks", db_index=False
    )
    # Crazytel's trunk id (a UUID); empty when the create's answer did not carry one.
    trunk_id = models.CharField(max_length=64, blank=True)
    username = models.CharField(max_length=16, unique=True)

    caller_id_number = models.CharField(max_length=32, blank=True)
    sms_sender = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=255, blank=True)
    area_code = models.CharField(max_length=10, blank=True)
    enabled = models.BooleanField(default=True)
    hide_caller_id = models.BooleanField(default=False)
    softphone_show_balance = models.BooleanField(default=True)
    softphone_sync_sms = models.BooleanField(default=False)

    state = models.CharField(
        max_length=12, choices=TrunkState.choices, default=TrunkState.CONFIRMED
    )
    # For an unconfirmed change: the settings requested (never a password) and its attempt.
    requested = models.JSONField(null=True, blank=True)
    # The change attempt in flight or unconfirmed (one at a time per trunk).
    change_record = models.ForeignKey(
        AuditRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="trunks_created", db_index=False,  # trunk_creator starts with it
    )  # fmt: skip
    created_by_username = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()
    created_record = models.ForeignKey(
        AuditRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    updated_by_username = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    # Grows by one with every confirmed change: a form rendered at an older version conflicts.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The list pages by a keyset on (-created_at, -id); each filter has an index ending in it.
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="trunk_tenant_created"),
            models.Index(fields=["-created_at", "-id"], name="trunk_created"),
            models.Index(fields=["created_by", "-created_at", "-id"], name="trunk_creator"),
            # One person's suspended (or enabled) trunks: read in order, not all theirs sorted.
            models.Index(
                fields=["created_by", "enabled", "-created_at", "-id"],
                name="trunk_creator_enabled",
            ),
            models.Index(
                fields=["tenant", "enabled", "-created_at", "-id"], name="trunk_tenant_enabled"
            ),
            models.Index(fields=["caller_id_number"], name="trunk_caller_id"),
            # Free text matches a number as caller ID or SMS sender: both indexed, so PostgreSQL
            # can OR them with the username and the description's trigram index (migration 0013).
            models.Index(fields=["sms_sender"], name="trunk_sms_sender"),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def changeable(self) -> bool:
        return bool(self.trunk_id) and self.state != TrunkState.MISSING

    @property
    def needs_attention(self) -> bool:
        return not self.trunk_id or self.state != TrunkState.CONFIRMED


# Bulk provisioning (issue 14): a spreadsheet's rows, each created as an ordinary trunk attempt.


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
    one download, and what became of it. A claimed row never goes back to ready."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="rows")
    index = models.PositiveIntegerField()  # the spreadsheet's row number (header = 1)
    data = models.JSONField(default=dict)
    password_ciphertext = models.TextField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=BulkRowStatus.choices, default=BulkRowStatus.READY
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
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
