"""The trunks the portal made, as last known: settings, state, who made and changed them."""

from django.conf import settings
from django.db import models

from .audit import AuditRecord
from .tenants import Tenant


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
