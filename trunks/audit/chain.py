"""The audit log's tamper evidence: each tenant's records form a hash chain.

`record_hash` covers a final record's content and the previous final record's hash, so any later
change breaks the chain (`manage.py verify_audit`).
"""

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.ipv6 import clean_ipv6_address

from trunks.models import AuditRecord, AuditStatus, Tenant

# The fields a record's hash covers, in order. Never add a field that can change after sealing.
# `actor_id` is left out on purpose: deleting a user sets it to NULL (the record keeps
# `actor_username`, which the hash covers), and that must not read as tampering.
HASHED_FIELDS = [
    "uuid",
    "kind",
    "tenant_id",
    "tenant_name",
    "actor_username",
    "client_ip",
    "user_agent",
    "request_id",
    "data",
    "caller_id_number",
    "description",
    "status",
    "upstream_status",
    "error_category",
    "error_message",
    "trunk_username",
    "trunk_id",
    "response",
    "submission_token",
    "related_id",
    "started_at",
    "finished_at",
    "duration_ms",
    "chain_seq",
    "prev_hash",
]


# Types whose values read back from any database as they are (most of a record's values).
_AS_IS = frozenset({str, int, bool, type(None)})


def _canonical(value: Any) -> Any:
    """A value as it reads back from any database, so a hash made before saving matches after."""
    kind = value.__class__
    if kind in _AS_IS:
        return value
    if isinstance(value, datetime):
        # Stored in UTC whatever zone it was written in.
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        # PostgreSQL's jsonb keeps numbers as numeric: 1.0 may come back as 1.
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): v if v.__class__ in _AS_IS else _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if v.__class__ in _AS_IS else _canonical(v) for v in value]
    return str(value)


def _canonical_ip(value: str | None) -> str | None:
    # The database normalises IPv6 text (2001:0DB8::1 → 2001:db8::1); so do we.
    if value and ":" in value:
        try:
            return clean_ipv6_address(value)
        except Exception:
            return value
    return value or None


def record_content(record: AuditRecord) -> dict[str, Any]:
    """The canonical content a record's hash covers."""
    values = record.__dict__
    content = {}
    for name in HASHED_FIELDS:
        # A loaded or written record holds each hashed field in its __dict__ (the ids by their
        # attname); a deferred one is read through its attribute.
        value = values[name] if name in values else getattr(record, name)
        content[name] = value if value.__class__ in _AS_IS else _canonical(value)
    content["client_ip"] = _canonical_ip(content["client_ip"])
    return content


# Canonical JSON: sorted keys, no spaces, UTF-8 as it is. One encoder for every record.
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash_compute(record: AuditRecord) -> str:
    """The SHA-256 over the record's hashed fields (canonical JSON, sorted keys, UTF-8)."""
    return hashlib.sha256(_JSON.encode(record_content(record)).encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first place a tenant's chain does not hold."""

    tenant_id: int
    tenant_name: str
    record_id: int | None
    chain_seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"record #{self.record_id}" if self.record_id else "chain"
        seq = f" (position {self.chain_seq})" if self.chain_seq else ""
        return f"tenant {self.tenant_name!r} (id {self.tenant_id}), {where}{seq}: {self.problem}"


@dataclass
class ChainReport:
    tenants: int = 0
    sealed: int = 0
    pending: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


def audit_chain_verify_tenant(
    *, tenant: Tenant, chunk_size: int = 2000
) -> tuple[int, ChainBreak | None]:
    """Recompute `tenant`'s chain in order, streaming. Returns (records checked, first break)."""
    expected_seq = 1
    prev_hash = ""
    checked = 0

    def broken(record, problem):
        return ChainBreak(
            tenant.pk,
            tenant.name,
            record.pk if record else None,
            record.chain_seq if record else None,
            problem,
        )

    sealed = AuditRecord.objects.filter(tenant_id=tenant.pk, chain_seq__isnull=False).order_by(
        "chain_seq"
    )
    for record in sealed.iterator(chunk_size=chunk_size):
        if record.chain_seq != expected_seq:
            return checked, broken(
                record,
                f"position {expected_seq} is missing (next is {record.chain_seq}): "
                "a sealed record was deleted",
            )
        if record.prev_hash != prev_hash:
            return checked, broken(
                record,
                f"prev_hash {record.prev_hash[:12] or '(empty)'}… does not match the previous "
                f"record's hash {prev_hash[:12] or '(empty)'}…",
            )
        if record.status == AuditStatus.PENDING:
            return checked, broken(record, "the record is sealed but its status is pending")
        actual = record_hash_compute(record)
        if actual != record.record_hash:
            return checked, broken(
                record,
                f"its content no longer matches record_hash (stored {record.record_hash[:12]}…, "
                f"recomputed {actual[:12]}…): a hashed field was changed",
            )
        prev_hash = record.record_hash
        expected_seq += 1
        checked += 1
    unsealed = (
        AuditRecord.objects.filter(tenant_id=tenant.pk, chain_seq__isnull=True)
        .exclude(status=AuditStatus.PENDING)
        .order_by("id")
        .first()
    )
    if unsealed is not None:
        return checked, broken(
            unsealed,
            f"the record is final ({unsealed.status}) but not in the chain: it was completed "
            "behind the application's back",
        )
    stray = (
        AuditRecord.objects.filter(tenant_id=tenant.pk, chain_seq__isnull=True)
        .exclude(record_hash="", prev_hash="")
        .order_by("id")
        .first()
    )
    if stray is not None:
        return checked, broken(stray, "the record carries hashes but no chain position")
    return checked, None


def audit_chain_verify(*, tenants=None, chunk_size: int = 2000) -> ChainReport:
    """Verify every tenant's chain (or those given). Memory stays constant: records stream."""
    report = ChainReport()
    for tenant in tenants if tenants is not None else Tenant.objects.order_by("id"):
        checked, problem = audit_chain_verify_tenant(tenant=tenant, chunk_size=chunk_size)
        report.tenants += 1
        report.sealed += checked
        report.pending += AuditRecord.objects.filter(
            tenant_id=tenant.pk, status=AuditStatus.PENDING
        ).count()
        if problem is not None:
            report.breaks.append(problem)
    return report
