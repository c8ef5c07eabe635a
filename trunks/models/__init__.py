"""The portal's data, one module per domain: tenants and who belongs to them, the audit log of
everything done, the trunks the portal made, bulk jobs, and the shared rate-limit state of each
Crazytel key when there is no Redis. Data only, plus properties that read one model (a tenant's
readiness, a role's rank). Everything is importable from `trunks.models`."""

from .audit import AuditKind, AuditRecord, AuditStatus
from .bulk import BULK_JOB_ENDED, BulkJob, BulkJobStatus, BulkRow, BulkRowStatus
from .ratelimit import RateLimitBucket
from .tenants import Invitation, Membership, PasswordChangeRequired, Role, Tenant, TenantReadiness
from .trunk import Trunk, TrunkState

__all__ = [
    "BULK_JOB_ENDED",
    "AuditKind",
    "AuditRecord",
    "AuditStatus",
    "BulkJob",
    "BulkJobStatus",
    "BulkRow",
    "BulkRowStatus",
    "Invitation",
    "Membership",
    "PasswordChangeRequired",
    "RateLimitBucket",
    "Role",
    "Tenant",
    "TenantReadiness",
    "Trunk",
    "TrunkState",
]
