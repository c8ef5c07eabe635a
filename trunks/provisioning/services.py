"""Creating a SIP trunk on a tenant's Crazytel account: recorded before and after the call, once per
submission (its token), with every upstream outcome turned into what the form shows."""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from trunks.audit.writer import audit_attempt_finish, audit_attempt_start
from trunks.crazytel import errors as upstream
from trunks.crazytel.contract import trunk_payload
from trunks.crazytel.parsing import redact
from trunks.lifecycle.records import trunk_row_from_attempt
from trunks.models import AuditRecord, AuditStatus, Tenant
from trunks.tenants.credentials import CredentialError
from trunks.tenants.upstream import crazytel_client_for

from .messages import (
    MESSAGE_CREDENTIALS,
    MESSAGE_UNKNOWN,
    TrunkError,
)
from .outcomes import CREATE, upstream_failure

logger = logging.getLogger(__name__)


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
    def not_sent(self) -> bool:
        """Held back by the portal itself (its rate limit or breaker): nothing reached Crazytel."""
        return self.status == AuditStatus.NOT_SENT

    @property
    def pending(self) -> bool:
        return self.status == AuditStatus.PENDING

    @property
    def settings(self) -> dict[str, Any]:
        """The values sent to Crazytel (never the password)."""
        return self.record.data


@sensitive_variables("data")
def trunk_payload_build(*, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for POST /sip-trunks/ (trunks.crazytel.contract: the fields, written once)."""
    return trunk_payload(data)


def _scrub(value: Any, secret: str) -> Any:
    """`value` with `secret` masked wherever it occurs (upstream messages may echo the input)."""
    return redact(value, (secret,))


def trunk_attempt_result(*, record: AuditRecord, duplicate: bool) -> TrunkCreateResult:
    """The result recorded for an attempt: an earlier submission of the same form (`duplicate`),
    or the attempt's own page."""
    message = record.error_message
    if record.status == AuditStatus.PENDING:
        message = (
            "This form was already submitted and Crazytel's answer is still awaited. "
            if duplicate
            else "Crazytel's answer is still awaited. "
        ) + "Wait a moment, then reload to see the result."
    elif record.status == AuditStatus.SUCCEEDED:
        message = (
            f"This form was already submitted: trunk {record.trunk_username} was created. "
            if duplicate
            else f"Trunk {record.trunk_username} was created. "
        ) + "Its password was shown once, on that submission's page."
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
    rate_limiter=None,
) -> TrunkCreateResult:
    """Create a SIP trunk on `tenant`'s Crazytel account, recording the attempt before and after.

    A `submission_token` already used returns that submission's result without calling Crazytel
    (the database's unique constraint decides, so two processes racing cannot both pass).
    `retry_of` is an attempt whose outcome was unknown; the new attempt points at it.
    Raises TrunkError when the tenant cannot be used (nothing is recorded or sent).
    `rate_limiter` replaces the tenant's default limiter (bulk jobs pay for their call up front).
    """
    readiness = tenant.readiness
    if not readiness:
        raise TrunkError(readiness.reason)
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
        first = (
            AuditRecord.objects.filter(submission_token=submission_token)
            .select_related("tenant")
            .first()
        )
        if first is None:  # not a token clash: a real integrity problem
            raise
        return trunk_attempt_result(record=first, duplicate=True)

    try:
        return _trunk_create_call(
            record=record,
            tenant=tenant,
            payload=payload,
            password=password,
            rate_limiter=rate_limiter,
        )
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
    *,
    record: AuditRecord,
    tenant: Tenant,
    payload: dict[str, Any],
    password: str,
    rate_limiter=None,
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
        created = crazytel_client_for(tenant, rate_limiter=rate_limiter).create_sip_trunk(payload)
    except CredentialError:
        final, message, _ = finish(
            AuditStatus.FAILED, message=MESSAGE_CREDENTIALS, category="credentials"
        )
        return TrunkCreateResult(
            record=final, status=final.status, message=message, category="credentials"
        )
    except upstream.CrazytelError as error:
        return _trunk_create_failure(error=error, tenant=tenant, payload=payload, finish=finish)

    response = _scrub(dict(created.response or {}), password)
    # The attempt's final record and the portal's Trunk record commit together (or not at all).
    final, _, _ = finish(
        AuditStatus.SUCCEEDED,
        upstream_status=200,
        trunk_username=created.username,
        trunk_id=str(created.trunk_id or "")[:64],
        response=response,
        commit_with=lambda final: trunk_row_from_attempt(
            attempt=final, username=created.username, trunk_id=final.trunk_id
        ),
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
    """Record one upstream error as the attempt's outcome and say it on the form."""
    failure = upstream_failure(error, attempt=CREATE, tenant=tenant, payload=payload)
    final, _, field_errors = finish(
        failure.status,
        message=failure.recorded_message,
        category=error.category,
        upstream_status=error.status,
        field_errors=failure.field_errors,
    )
    return TrunkCreateResult(
        record=final,
        status=final.status,
        message=_scrub(failure.message, payload.get("password", "")),
        field_errors=field_errors,
        category=error.category,
        retry_after=failure.retry_after,
    )
