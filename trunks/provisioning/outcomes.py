"""What a failed upstream call means for a trunk attempt — a create, a change, a bulk row — read once.

Every attempt maps Crazytel's errors the same way (the audit status, the message, the fields to mark,
the wait, the tenant flagged on a rejected key); only the words for what did not happen differ, and
they come from the `Attempt` passed in.
"""

from dataclasses import dataclass, field
from typing import Any

from django.views.decorators.debug import sensitive_variables

from trunks.crazytel import errors as upstream
from trunks.crazytel.contract import TRUNK_FIELD_NAMES
from trunks.crazytel.parsing import NON_FIELD, redact
from trunks.models import AuditStatus, Tenant
from trunks.tenants.services import tenant_connection_mark_failed

from .messages import (
    MESSAGE_CHANGE_UNKNOWN,
    MESSAGE_CHANGE_UNREACHABLE,
    MESSAGE_REJECTED_KEY,
    MESSAGE_TRUNK_MISSING,
    MESSAGE_UNKNOWN,
    MESSAGE_UNREACHABLE,
    retry_seconds,
)
from .numbers import verified_numbers_forget

PASSWORD_RULES = (
    "Crazytel refused this password: use at least 8 characters with an upper-case letter, a "
    "lower-case letter and a digit."
)
NUMBER_NOT_VERIFIED = (
    "Crazytel refused the caller ID or SMS sender as not verified on this account."
)


@dataclass(frozen=True)
class Attempt:
    """The words an attempt's messages use for what it would have done."""

    done: str  # "created": "Nothing was created."
    asked: str  # "request": "Crazytel refused the request (HTTP 409)"
    doing: str  # "creating a trunk": why the tenant's key is flagged
    unreachable: str
    unknown: str


CREATE = Attempt("created", "request", "creating a trunk", MESSAGE_UNREACHABLE, MESSAGE_UNKNOWN)
CHANGE = Attempt(
    "changed", "change", "changing a trunk", MESSAGE_CHANGE_UNREACHABLE, MESSAGE_CHANGE_UNKNOWN
)


@dataclass
class Failure:
    """One failed call, read: what to record and what the page shows."""

    status: AuditStatus
    message: str
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    retry_after: int | None = None
    # Crazytel answered 404 for the trunk's id: it no longer has it.
    missing: bool = False

    @property
    def recorded_message(self) -> str:
        """The message with every field's message after it: what the audit record keeps."""
        extra = [m for messages in self.field_errors.values() for m in messages]
        return " ".join([self.message, *extra])


@sensitive_variables("payload", "password")
def upstream_failure(
    error: upstream.CrazytelError, *, attempt: Attempt, tenant: Tenant, payload: dict[str, Any]
) -> Failure:
    """Read `error` for an attempt that sent `payload` on `tenant`'s account; flag the tenant's key
    on a 401 and forget its verified numbers when Crazytel says they changed."""
    password = payload.get("password") or ""
    detail = (error.message or "").strip()
    if password:
        detail = redact(detail, (password,))

    if isinstance(error, upstream.TrunkNotFound):
        return Failure(AuditStatus.FAILED, MESSAGE_TRUNK_MISSING, missing=True)

    if isinstance(error, upstream.ValidationFailed):
        field_errors = {k: list(v) for k, v in (error.field_errors or {}).items()}
        # The contract's 422 is about the password; say so there unless Crazytel named a field.
        if not set(field_errors) & set(TRUNK_FIELD_NAMES):
            if "password" in payload:
                field_errors.setdefault("password", []).append(PASSWORD_RULES)
            else:
                field_errors.setdefault(NON_FIELD, []).append(detail)
        return Failure(
            AuditStatus.FAILED,
            f"Crazytel refused the values: see the fields marked below. Nothing was "
            f"{attempt.done}.",
            field_errors,
        )

    if isinstance(error, upstream.NumberRejected):
        field_errors = {
            k: list(v)
            for k, v in (error.field_errors or {}).items()
            if k in ("caller_id_number", "sms_sender")
        }
        if not field_errors:
            field_errors["caller_id_number"] = [
                NUMBER_NOT_VERIFIED + (f" ({detail})" if detail else "")
            ]
        # The account's verified numbers changed under us: read them afresh next time.
        verified_numbers_forget(tenant=tenant)
        return Failure(
            AuditStatus.FAILED,
            f"Crazytel refused a number: see the fields marked below. Nothing was {attempt.done}.",
            field_errors,
        )

    if isinstance(error, upstream.RejectedKey):
        tenant_connection_mark_failed(
            tenant=tenant,
            message=f"Crazytel rejected the API key (401) {attempt.doing}. Set a new key.",
        )
        verified_numbers_forget(tenant=tenant)
        return Failure(AuditStatus.FAILED, MESSAGE_REJECTED_KEY)

    if isinstance(error, upstream.RateLimited):
        retry_after = retry_seconds(error)
        if error.status is None:
            # Held back by the portal's own limiter (budget spent, a 429's pause, or the circuit
            # breaker after repeated failures): nothing was sent, and its message says which.
            # Recorded apart from the failures Crazytel returned.
            return Failure(
                AuditStatus.NOT_SENT,
                detail
                or f"The portal held this request back to stay within Crazytel's limits; try "
                f"again in {retry_after} seconds. Nothing was sent to Crazytel.",
                retry_after=retry_after,
            )
        return Failure(
            AuditStatus.FAILED,
            f"Crazytel is busy; try again in {retry_after} seconds. Nothing was {attempt.done}.",
            retry_after=retry_after,
        )

    if isinstance(error, upstream.Unreachable):
        return Failure(AuditStatus.FAILED, attempt.unreachable)

    if (
        isinstance(error, upstream.UpstreamError)
        and error.status is not None
        and 400 <= error.status < 500
    ):
        # A refusal the contract does not list (403, 409...): Crazytel answered "no".
        message = (
            f"Crazytel refused the {attempt.asked} (HTTP {error.status}); nothing was "
            f"{attempt.done}."
        )
        return Failure(AuditStatus.FAILED, message + (f" It said: {detail}" if detail else ""))

    # UpstreamError (5xx, an HTML page, a malformed 2xx), OutcomeUnknown, anything unforeseen:
    # it may have taken effect.
    return Failure(AuditStatus.UNKNOWN, attempt.unknown + (f" Details: {detail}" if detail else ""))
