"""Business actions: each a plain function with keyword-only arguments, named <entity>_<action>.

Several features add their own section below. Views call these; nothing here renders anything.
"""

# =================================================================================================
# Trunks (issue 5): verified numbers for the form, and creating a SIP trunk.
# =================================================================================================

import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import crazytel
from .audit import audit_attempt_finish, audit_attempt_start
from .credentials import CredentialError
from .models import AuditRecord, AuditStatus, Tenant

logger = logging.getLogger(__name__)

# The fields Crazytel's POST /sip-trunks/ takes, in the document's order, with their JSON types.
TRUNK_FIELDS: dict[str, type] = {
    "password": str,
    "caller_id_number": str,
    "enabled": bool,
    "area_code": str,
    "description": str,
    "hide_caller_id": bool,
    "sms_sender": str,
    "softphone_show_balance": bool,
    "softphone_sync_sms": bool,
}
_BOOL_DEFAULTS = {
    "enabled": True,
    "hide_caller_id": False,
    "softphone_show_balance": True,
    "softphone_sync_sms": False,
}
# Optional text fields are left out of the request when empty rather than sent as "".
_OMIT_WHEN_EMPTY = {"area_code", "description", "sms_sender"}

MESSAGE_REJECTED_KEY = "This tenant's Crazytel key was rejected; an admin must replace it."
MESSAGE_UNREACHABLE = "Crazytel could not be reached, so nothing was created; try again."
MESSAGE_UNKNOWN = "We could not confirm whether Crazytel created the trunk; check the account before trying again."
MESSAGE_CREDENTIALS = "This tenant's stored Crazytel key cannot be read; nothing was sent. An admin must set it again."


class TrunkError(Exception):
    """A trunk action the portal refuses before anything goes upstream. `.message` is for a person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def tenant_unavailable_reason(*, tenant: Tenant) -> str:
    """Why trunks cannot be created for `tenant` right now, or "" when they can."""
    if not tenant.is_active:
        return (
            f"{tenant.name} is inactive, so no trunks can be created for it. "
            "Ask an admin to reactivate the tenant."
        )
    if not tenant.has_api_key:
        return (
            f"{tenant.name} has no Crazytel API key yet, so the portal cannot reach its account. "
            "Ask an admin to set the key on the tenant's page."
        )
    return ""


def _tenant_connection_failing(*, tenant: Tenant, message: str) -> None:
    """Flag the tenant's connection as failing (shown to its admins until a test passes)."""
    now = timezone.now()
    Tenant.objects.filter(pk=tenant.pk).update(
        connection_ok=False, connection_message=message[:300], connection_checked_at=now
    )
    tenant.connection_ok = False
    tenant.connection_message = message[:300]
    tenant.connection_checked_at = now


# --- Verified numbers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedNumbers:
    """The tenant's verified numbers, or why they could not be had."""

    numbers: tuple[crazytel.VerifiedNumber, ...] = ()
    error: str = ""
    category: str = ""
    fetched_at: Any = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def mobiles(self) -> tuple[crazytel.VerifiedNumber, ...]:
        return tuple(n for n in self.numbers if n.number.startswith("614"))

    def contains(self, number: str) -> bool:
        return any(n.number == number for n in self.numbers)


def verified_numbers_cache_key(*, tenant: Tenant) -> str:
    """Per tenant, and per key and base URL, so a replaced key never sees the old account's numbers.

    Built from when the key was set and the URL, never from the key itself.
    """
    stamp = tenant.api_key_set_at.isoformat() if tenant.api_key_set_at else "none"
    fingerprint = hashlib.sha256(f"{stamp}|{tenant.effective_base_url}".encode()).hexdigest()[:16]
    return f"trunks:verified-numbers:v1:{tenant.pk}:{fingerprint}"


def verified_numbers_forget(*, tenant: Tenant) -> None:
    cache.delete(verified_numbers_cache_key(tenant=tenant))


def _numbers_error_message(error: crazytel.CrazytelError) -> str:
    if isinstance(error, crazytel.RejectedKey):
        return MESSAGE_REJECTED_KEY
    if isinstance(error, crazytel.Unreachable):
        return "Crazytel could not be reached to list this tenant's verified numbers."
    if isinstance(error, crazytel.RateLimited):
        return f"Crazytel is busy; try again in {_retry_seconds(error)} seconds."
    return "Crazytel's list of verified numbers could not be read. " + (error.message or "")


def verified_numbers_get(*, tenant: Tenant, refresh: bool = False) -> VerifiedNumbers:
    """The tenant's verified numbers, from the shared cache unless `refresh` or expired.

    Failures are not cached: the next look asks Crazytel again. A rejected key flags the tenant.
    """
    key = verified_numbers_cache_key(tenant=tenant)
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return VerifiedNumbers(
                numbers=tuple(crazytel.VerifiedNumber(**n) for n in cached["numbers"]),
                fetched_at=cached["fetched_at"],
                from_cache=True,
            )
    try:
        numbers = crazytel.crazytel_client_for(tenant).verified_numbers()
    except CredentialError:
        return VerifiedNumbers(error=MESSAGE_CREDENTIALS, category="credentials")
    except crazytel.CrazytelError as error:
        if isinstance(error, crazytel.RejectedKey):
            _tenant_connection_failing(
                tenant=tenant, message="Crazytel rejected the API key (HTTP 401) listing numbers."
            )
        return VerifiedNumbers(error=_numbers_error_message(error), category=error.category)
    now = timezone.now()
    cache.set(
        key,
        {"numbers": [{"number": n.number, "label": n.label} for n in numbers], "fetched_at": now},
        settings.CRAZYTEL_NUMBERS_CACHE_TTL,
    )
    return VerifiedNumbers(numbers=tuple(numbers), fetched_at=now)


# --- Creating a trunk ------------------------------------------------------------------------------


@dataclass
class TrunkCreateResult:
    """What became of one submission. `password` is set only on the response that created the trunk,
    to show it once; it is never stored anywhere."""

    record: AuditRecord
    status: str
    message: str = ""
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    category: str = ""
    retry_after: int | None = None
    username: str = ""
    trunk_id: str = ""
    password: str = field(default="", repr=False)
    # True when this is an earlier submission of the same form, found by its token.
    duplicate: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == AuditStatus.SUCCEEDED

    @property
    def unknown(self) -> bool:
        return self.status == AuditStatus.UNKNOWN

    @property
    def pending(self) -> bool:
        return self.status == AuditStatus.PENDING

    @property
    def settings(self) -> dict[str, Any]:
        """The values sent to Crazytel (never the password)."""
        return self.record.data


@sensitive_variables("data", "payload")
def trunk_payload_build(*, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for POST /sip-trunks/: exactly the documented fields, with their types."""
    payload: dict[str, Any] = {}
    for name, kind in TRUNK_FIELDS.items():
        value = data.get(name)
        if kind is bool:
            payload[name] = bool(value) if value is not None else _BOOL_DEFAULTS[name]
        else:
            text = "" if value is None else str(value)
            if name in _OMIT_WHEN_EMPTY and not text:
                continue
            payload[name] = text
    return payload


def _retry_seconds(error: crazytel.CrazytelError) -> int:
    retry_after = getattr(error, "retry_after", None)
    if retry_after is None or retry_after <= 0:
        # Crazytel's limit is per minute: a minute always clears it.
        return 60
    return max(1, math.ceil(retry_after))


def _scrub(value: Any, secret: str) -> Any:
    """`value` with every occurrence of `secret` masked (upstream messages may echo the input)."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, "••••••••")
    if isinstance(value, dict):
        return {k: _scrub(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secret) for v in value]
    return value


def trunk_attempt_result(*, record: AuditRecord, duplicate: bool) -> TrunkCreateResult:
    """The result recorded for an attempt (an earlier submission of the same form)."""
    message = record.error_message
    if record.status == AuditStatus.PENDING:
        message = (
            "This form was already submitted and Crazytel's answer is still awaited. "
            "Wait a moment, then reload to see the result."
        )
    elif record.status == AuditStatus.SUCCEEDED:
        message = (
            f"This form was already submitted: trunk {record.trunk_username} was created. "
            "Its password was shown once, on that submission's page."
        )
    elif record.status == AuditStatus.UNKNOWN:
        message = message or MESSAGE_UNKNOWN
    return TrunkCreateResult(
        record=record,
        status=record.status,
        message=message,
        category=record.error_category,
        username=record.trunk_username,
        trunk_id=record.trunk_id,
        duplicate=duplicate,
    )


@sensitive_variables("data", "payload", "password")
def trunk_create(
    *,
    actor,
    tenant: Tenant,
    data: dict[str, Any],
    request: HttpRequest | None,
    submission_token: str,
    retry_of: AuditRecord | None = None,
) -> TrunkCreateResult:
    """Create a SIP trunk on `tenant`'s Crazytel account, recording the attempt before and after.

    A `submission_token` already used returns that submission's result without calling Crazytel
    (the database's unique constraint decides, so two processes racing cannot both pass).
    `retry_of` is an attempt whose outcome was unknown; the new attempt points at it.
    Raises TrunkError when the tenant cannot be used (nothing is recorded or sent).
    """
    reason = tenant_unavailable_reason(tenant=tenant)
    if reason:
        raise TrunkError(reason)
    if retry_of is not None and (
        retry_of.tenant_id != tenant.pk or retry_of.status != AuditStatus.UNKNOWN
    ):
        raise TrunkError("Only an attempt of this tenant whose outcome is unknown can be retried.")

    payload = trunk_payload_build(data=data)
    password = payload["password"]
    recorded = {k: v for k, v in payload.items() if k != "password"}
    if retry_of is not None:
        recorded["retry_of"] = str(retry_of.uuid)

    try:
        record = audit_attempt_start(
            tenant=tenant,
            actor=actor,
            request=request,
            data=recorded,
            submission_token=submission_token,
            related=retry_of,
        )
    except IntegrityError:
        first = AuditRecord.objects.filter(submission_token=submission_token).first()
        if first is None:  # not a token clash: a real integrity problem
            raise
        return trunk_attempt_result(record=first, duplicate=True)

    try:
        return _trunk_create_call(record=record, tenant=tenant, payload=payload, password=password)
    except BaseException:
        # A bug or an interrupted worker must not leave the attempt pending forever: the request
        # may have reached Crazytel, so the honest status is unknown.
        logger.exception("trunk_create failed unexpectedly (attempt %s)", record.uuid)
        fresh = AuditRecord.objects.filter(pk=record.pk, status=AuditStatus.PENDING).exists()
        if fresh:
            audit_attempt_finish(
                record=record,
                status=AuditStatus.UNKNOWN,
                error_category="internal",
                error_message=MESSAGE_UNKNOWN,
            )
        raise


@sensitive_variables("payload", "password")
def _trunk_create_call(
    *, record: AuditRecord, tenant: Tenant, payload: dict[str, Any], password: str
) -> TrunkCreateResult:
    # Its frame sees `password` (a closure variable): hidden from error reports too.
    @sensitive_variables("password")
    def finish(status, *, message="", category="", upstream_status=None, field_errors=None, **kw):
        message = _scrub(message, password)
        final = audit_attempt_finish(
            record=record,
            status=status,
            upstream_status=upstream_status,
            error_category=category,
            error_message=message,
            **kw,
        )
        return final, message, _scrub(field_errors or {}, password)

    try:
        created = crazytel.crazytel_client_for(tenant).create_sip_trunk(payload)
    except CredentialError:
        final, message, _ = finish(
            AuditStatus.FAILED, message=MESSAGE_CREDENTIALS, category="credentials"
        )
        return TrunkCreateResult(
            record=final, status=final.status, message=message, category="credentials"
        )
    except crazytel.CrazytelError as error:
        return _trunk_create_failure(error=error, tenant=tenant, payload=payload, finish=finish)

    response = _scrub(dict(created.response or {}), password)
    final, _, _ = finish(
        AuditStatus.SUCCEEDED,
        upstream_status=200,
        trunk_username=created.username,
        trunk_id=str(created.trunk_id or "")[:64],
        response=response,
    )
    return TrunkCreateResult(
        record=final,
        status=final.status,
        username=created.username,
        trunk_id=final.trunk_id,
        password=password,
    )


@sensitive_variables("payload")
def _trunk_create_failure(*, error, tenant, payload, finish) -> TrunkCreateResult:
    """Map one upstream error to its audit status and what the form shows."""
    status = AuditStatus.FAILED
    field_errors: dict[str, list[str]] = {}
    retry_after = None
    detail = (error.message or "").strip()

    if isinstance(error, crazytel.ValidationFailed):
        field_errors = {k: list(v) for k, v in (error.field_errors or {}).items()}
        if not field_errors.get("password"):
            field_errors.setdefault("password", []).append(
                "Crazytel refused this password: use at least 8 characters with an upper-case "
                "letter, a lower-case letter and a digit."
            )
        message = "Crazytel refused the values: see the fields marked below. Nothing was created."
    elif isinstance(error, crazytel.NumberRejected):
        field_errors = {
            k: list(v)
            for k, v in (error.field_errors or {}).items()
            if k in ("caller_id_number", "sms_sender")
        }
        if not field_errors:
            field_errors["caller_id_number"] = [
                "Crazytel refused the caller ID or SMS sender as not verified on this account."
                + (f" ({detail})" if detail else "")
            ]
        message = "Crazytel refused a number: see the fields marked below. Nothing was created."
        # The account's verified numbers changed under us: read them afresh next time.
        verified_numbers_forget(tenant=tenant)
    elif isinstance(error, crazytel.RejectedKey):
        message = MESSAGE_REJECTED_KEY
        _tenant_connection_failing(
            tenant=tenant, message="Crazytel rejected the API key (HTTP 401) creating a trunk."
        )
        verified_numbers_forget(tenant=tenant)
    elif isinstance(error, crazytel.RateLimited):
        retry_after = _retry_seconds(error)
        message = f"Crazytel is busy; try again in {retry_after} seconds. Nothing was created."
    elif isinstance(error, crazytel.Unreachable):
        message = MESSAGE_UNREACHABLE
    elif (
        isinstance(error, crazytel.UpstreamError)
        and error.status is not None
        and 400 <= error.status < 500
    ):
        # A refusal the contract does not list (403, 404, 409...): Crazytel answered "no".
        message = f"Crazytel refused the request (HTTP {error.status}); nothing was created."
        if detail:
            message += f" It said: {detail}"
    else:
        # UpstreamError (5xx, HTML page, malformed 2xx), OutcomeUnknown, anything unforeseen.
        status = AuditStatus.UNKNOWN
        message = MESSAGE_UNKNOWN
        if detail:
            message += f" (Crazytel: {detail})"

    all_messages = [m for msgs in field_errors.values() for m in msgs]
    recorded_message = message if not all_messages else f"{message} " + " ".join(all_messages)
    final, shown, field_errors = finish(
        status,
        message=recorded_message,
        category=error.category,
        upstream_status=error.status,
        field_errors=field_errors,
    )
    shown = _scrub(message, payload.get("password", ""))
    return TrunkCreateResult(
        record=final,
        status=final.status,
        message=shown,
        field_errors=field_errors,
        category=error.category,
        retry_after=retry_after,
    )
