"""Audit checkpoints: each tenant's chain head, signed, kept outside the database.

The hash chain shows a record changed or removed from the middle, but not records removed from the
end, nor a whole chain put back to an earlier state: what is left still links up. A checkpoint
anchors the head — (tenant, chain position, record hash, the record's time), HMAC-signed with
AUDIT_CHECKPOINT_KEY (a key of its own: whoever holds SECRET_KEY or the database must not be able
to forge one) — in the structured log always, and as one JSON line appended to AUDIT_CHECKPOINT_PATH
when set. `verify_audit --checkpoints PATH` then checks today's chains against the latest
checkpoint of each tenant.
"""

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from trunks.models import AuditRecord, Tenant

logger = logging.getLogger(__name__)

VERSION = 1
# The fields a signature covers, in this order (canonical JSON, sorted keys).
SIGNED_FIELDS = (
    "v",
    "tenant_id",
    "tenant_slug",
    "chain_seq",
    "record_hash",
    "head_at",
    "written_at",
)


def _key() -> bytes:
    key = getattr(settings, "AUDIT_CHECKPOINT_KEY", "")
    if not key:
        raise ImproperlyConfigured(
            "AUDIT_CHECKPOINT_KEY is not set: audit checkpoints cannot be signed or checked."
        )
    return key.encode()


def checkpoint_signature(checkpoint: dict[str, Any], *, key: bytes | None = None) -> str:
    """HMAC-SHA256 over the checkpoint's signed fields."""
    blob = json.dumps(
        {name: checkpoint.get(name) for name in SIGNED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key or _key(), blob.encode(), hashlib.sha256).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def audit_checkpoints_write(*, path: str | None = None) -> list[dict[str, Any]]:
    """Sign and write every tenant's chain head: to the log, and appended to `path` (default
    AUDIT_CHECKPOINT_PATH) when there is one. Returns the checkpoints written."""
    key = _key()
    path = settings.AUDIT_CHECKPOINT_PATH if path is None else path
    written_at = _iso(timezone.now())
    checkpoints = []
    for tenant in Tenant.objects.order_by("id").only("id", "slug"):
        head = (
            AuditRecord.objects.filter(tenant_id=tenant.pk, chain_seq__isnull=False)
            .order_by("-chain_seq")
            .only("chain_seq", "record_hash", "finished_at", "started_at")
            .first()
        )
        checkpoint = {
            "v": VERSION,
            "tenant_id": tenant.pk,
            "tenant_slug": tenant.slug,
            "chain_seq": head.chain_seq if head else 0,
            "record_hash": head.record_hash if head else "",
            "head_at": _iso(head.finished_at or head.started_at) if head else None,
            "written_at": written_at,
        }
        checkpoint["signature"] = checkpoint_signature(checkpoint, key=key)
        checkpoints.append(checkpoint)
        logger.info(
            "audit checkpoint %s at position %s",
            tenant.slug,
            checkpoint["chain_seq"],
            extra={"audit_checkpoint": checkpoint},
        )
    if path and checkpoints:
        _append(_file_for(Path(path)), checkpoints)
    return checkpoints


def _file_for(path: Path) -> Path:
    """A directory gets one file a month (easy to ship and to rotate away); a file is used as is."""
    if path.is_dir():
        return path / f"audit-checkpoints-{timezone.now():%Y-%m}.jsonl"
    return path


def _append(path: Path, checkpoints: list[dict[str, Any]]) -> None:
    # O_APPEND: every write lands at the end, whatever another writer did; one write per run, so
    # two workers' runs never interleave inside a line. Never truncated, never rewritten.
    blob = "".join(json.dumps(c, sort_keys=True) + "\n" for c in checkpoints).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, blob)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class CheckpointReport:
    read: int = 0
    problems: list[str] | None = None

    def __post_init__(self):
        self.problems = self.problems or []

    @property
    def ok(self) -> bool:
        return not self.problems


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".jsonl" and p.is_file())
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"No checkpoint file or directory at {path}.")


def _checkpoints_read(path: Path, report: CheckpointReport) -> dict[int, dict[str, Any]]:
    """The latest valid checkpoint of each tenant; a forged or unreadable line is a problem."""
    key = _key()
    latest: dict[int, dict[str, Any]] = {}
    for file in _files(path):
        with file.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{file.name} line {number}"
                try:
                    checkpoint = json.loads(line)
                    signature = str(checkpoint["signature"])
                    seq = int(checkpoint["chain_seq"])
                    tenant_id = int(checkpoint["tenant_id"])
                except (ValueError, TypeError, KeyError):
                    report.problems.append(f"{where}: not a checkpoint (unreadable)")
                    continue
                expected = checkpoint_signature(checkpoint, key=key)
                if not hmac.compare_digest(signature, expected):
                    report.problems.append(
                        f"{where}: the signature does not match AUDIT_CHECKPOINT_KEY — a forged "
                        "or altered checkpoint, refused"
                    )
                    continue
                report.read += 1
                if tenant_id not in latest or seq >= int(latest[tenant_id]["chain_seq"]):
                    latest[tenant_id] = checkpoint
    return latest


def audit_checkpoints_verify(*, path: str, tenant_ids: list[int] | None = None) -> CheckpointReport:
    """Check each tenant's chain today against its latest signed checkpoint in `path`: the chain
    must still reach that position, and the record there must have the hash the checkpoint saw.
    (Everything before it is then vouched for by the hash chain itself: verify it too.)"""
    report = CheckpointReport()
    latest = _checkpoints_read(Path(path), report)
    if tenant_ids is not None:
        latest = {k: v for k, v in latest.items() if k in tenant_ids}
    tenants = Tenant.objects.in_bulk(list(latest))
    for tenant_id, checkpoint in sorted(latest.items()):
        seq = int(checkpoint["chain_seq"])
        name = checkpoint.get("tenant_slug") or str(tenant_id)
        seen = (
            f"the checkpoint of {checkpoint.get('written_at')} saw position {seq} "
            f"(hash {str(checkpoint['record_hash'])[:12]}…)"
        )
        tenant = tenants.get(tenant_id)
        if tenant is None:
            if seq:
                report.problems.append(
                    f"tenant {name!r} (id {tenant_id}) no longer exists: records 1 to {seq} "
                    f"are missing ({seen})"
                )
            continue
        sealed = AuditRecord.objects.filter(tenant_id=tenant_id, chain_seq__isnull=False)
        head = sealed.order_by("-chain_seq").values_list("chain_seq", flat=True).first() or 0
        label = f"tenant {tenant.slug!r} (id {tenant_id})"
        if head < seq:
            report.problems.append(
                f"{label}: positions {head + 1} to {seq} are missing from the end of the chain "
                f"(it now ends at position {head}; {seen})"
            )
            continue
        if seq == 0:
            continue
        stored = sealed.filter(chain_seq=seq).values_list("record_hash", flat=True).first()
        if stored != checkpoint["record_hash"]:
            now_holds = "no record" if stored is None else f"hash {stored[:12]}…"
            report.problems.append(
                f"{label}: the chain was rolled back or rewritten: position {seq} now holds "
                f"{now_holds}, but {seen}"
            )
    return report
