"""The sandbox's data: Crazytel-like accounts (key, numbers, balance, faults) and the trunks they made."""

import hashlib
import hmac
import secrets
import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class NumbersShape(models.TextChoices):
    """Which of the contract's tolerated shapes GET /account/verified-cli/ answers in."""

    OBJECTS = "objects", 'List of objects: [{"number", "label"}]'
    STRINGS = "strings", "List of strings"
    WRAPPED = "wrapped", 'Wrapped: {"results": [{"cli", "description"}]}'


class FaultScope(models.TextChoices):
    CREATE = "create", "Creating a trunk only"
    READS = "reads", "Reads only (numbers, balance)"
    ALL = "all", "Every request"


def _account_code() -> str:
    return f"{secrets.randbelow(10**7):07d}"


def _api_key() -> str:
    return f"ctsbx_{secrets.token_urlsafe(24)}"


def validate_verified_numbers(value) -> None:
    """A list of {"number": digits, "label": text}."""
    if not isinstance(value, list):
        raise ValidationError(
            'Enter a list such as [{"number": "61298765432", "label": "Office"}].'
        )
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("number"), str):
            raise ValidationError(f'Entry {index} needs a "number" given as text.')
        number = item["number"]
        if not number.isascii() or not number.isdigit() or not 8 <= len(number) <= 15:
            raise ValidationError(
                f"Entry {index}: {number!r} is not a number in international form without + "
                "(e.g. 61298765432)."
            )
        if not isinstance(item.get("label", ""), str):
            raise ValidationError(f'Entry {index}: "label" must be text.')
        if set(item) - {"number", "label"}:
            raise ValidationError(f'Entry {index}: only "number" and "label" are kept.')


class SandboxAccount(models.Model):
    """One sandbox API key: its verified numbers, balance, and the faults it is set to inject."""

    name = models.CharField(max_length=100, unique=True)
    api_key = models.CharField("API key", max_length=100, unique=True, default=_api_key)
    account_code = models.CharField(max_length=16, default=_account_code)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("100.00"))
    verified_numbers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_verified_numbers],
        help_text='A list of {"number": "61298765432", "label": "Sydney office"}.',
    )
    numbers_shape = models.CharField(
        max_length=10, choices=NumbersShape.choices, default=NumbersShape.OBJECTS
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        default=60, help_text="Crazytel allows 60 requests a minute per key. 0 turns the limit off."
    )

    # --- Faults ---------------------------------------------------------------------------------
    fault_scope = models.CharField(
        max_length=10,
        choices=FaultScope.choices,
        default=FaultScope.CREATE,
        help_text="Which requests the faults below apply to.",
    )
    fault_remaining = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Apply the faults to this many more requests, then stop. Empty: until cleared.",
    )
    latency_ms = models.PositiveIntegerField(
        "added latency (ms)", default=0, validators=[MaxValueValidator(120_000)]
    )
    forced_status = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(400), MaxValueValidator(599)],
        help_text="Answer with this status (400 to 599) instead of doing the work.",
    )
    retry_after = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds sent as Retry-After with a forced status."
    )
    html_error = models.BooleanField(
        "HTML error page",
        default=False,
        help_text="Answer with an HTML error page (the forced status, or 502).",
    )
    malformed_json = models.BooleanField(
        "malformed JSON", default=False, help_text="Answer 200 with a body that is not JSON."
    )
    invalid_username = models.BooleanField(
        default=False,
        help_text="A create answers 200 with a trunk object whose username is not CT + 6 digits.",
    )
    drop_connection = models.BooleanField(
        default=False, help_text="Close the connection without answering."
    )
    create_then_timeout = models.BooleanField(
        "create, then time out",
        default=False,
        help_text="Create the trunk, then answer only after the portal's read timeout has passed.",
    )
    timeout_sleep_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How long 'create, then time out' waits. Empty: the portal's timeout + 5 s.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    FAULT_FIELDS = (
        "fault_scope",
        "fault_remaining",
        "latency_ms",
        "forced_status",
        "retry_after",
        "html_error",
        "malformed_json",
        "invalid_username",
        "drop_connection",
        "create_then_timeout",
        "timeout_sleep_ms",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key_masked(self) -> str:
        return f"••••{self.api_key[-4:]}" if self.api_key else ""

    @property
    def has_faults(self) -> bool:
        return bool(
            self.latency_ms
            or self.forced_status
            or self.html_error
            or self.malformed_json
            or self.invalid_username
            or self.drop_connection
            or self.create_then_timeout
        )

    def number_set(self) -> set[str]:
        return {item["number"] for item in self.verified_numbers if isinstance(item, dict)}


class SandboxTrunk(models.Model):
    """A trunk the sandbox created. The password itself is never kept: only a salted digest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="trunks")
    username = models.CharField(max_length=8, unique=True)
    password_digest = models.CharField(max_length=100, editable=False)
    caller_id_number = models.CharField(max_length=20)
    sms_sender = models.CharField(max_length=20, blank=True)
    area_code = models.CharField(max_length=10, blank=True)
    description = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)
    hide_caller_id = models.BooleanField(default=False)
    softphone_show_balance = models.BooleanField(default=True)
    softphone_sync_sms = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.username

    def set_password(self, password: str) -> None:
        salt = secrets.token_hex(8)
        digest = hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()
        self.password_digest = f"sha256${salt}${digest}"

    def check_password(self, password: str) -> bool:
        try:
            _, salt, digest = self.password_digest.split("$")
        except ValueError:
            return False
        candidate = hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()
        return hmac.compare_digest(candidate, digest)

    def as_api(self) -> dict:
        """The trunk as Crazytel's API returns it."""
        return {
            "id": str(self.id),
            "username": self.username,
            "enabled": self.enabled,
            "area_code": self.area_code or None,
            "caller_id_number": self.caller_id_number,
            "description": self.description or None,
            "hide_caller_id": self.hide_caller_id,
            "sms_sender": self.sms_sender or None,
            "softphone_show_balance": self.softphone_show_balance,
            "softphone_sync_sms": self.softphone_sync_sms,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


class SandboxRateWindow(models.Model):
    """Requests one key made in one minute, shared by every process through the database."""

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="+")
    window = models.BigIntegerField(help_text="Minutes since the epoch.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "window"], name="sandbox_rate_window_unique")
        ]

    def __str__(self) -> str:
        return f"{self.account_id} @ {self.window}: {self.count}"
