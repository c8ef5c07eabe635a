"""Generate a realistic audit log at scale (benchmarks, demos): sealed records with valid chains.

Records are built in Python, hashed in chain order per tenant (trunks.audit.record_hash_compute,
the same function the application seals with), and written with COPY on PostgreSQL or bulk_create
elsewhere. `verify_audit` passes on the result. Never run it against production data.
"""

import json
import random
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from trunks.audit.cache import audit_cache_invalidate
from trunks.audit.chain import HASHED_FIELDS, record_hash_compute
from trunks.crazytel.contract import number_is_mobile_sender
from trunks.models import AuditKind, AuditRecord, AuditStatus, Membership, Role, Tenant

# Every column a generated record fills: the hashed ones, plus the two the hash leaves out.
COLUMNS = [*HASHED_FIELDS, "actor_id", "record_hash"]
JSON_COLUMNS = {"data", "response"}

PLACES = [
    "Reception",
    "Sales",
    "Support",
    "Warehouse",
    "Boardroom",
    "Level 3",
    "Level 7",
    "Kitchen",
]
DEVICES = ["desk phone", "softphone", "DECT handset", "fax bridge", "door intercom", "call centre"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
]
FAILURES = [
    # (weight, upstream status, category, message)
    (40, 422, "validation", "password: must contain at least one digit"),
    (25, 400, "number_rejected", "caller_id_number: not a verified number on this account"),
    (10, 401, "rejected_key", "Crazytel rejected the tenant's API key."),
    (10, 429, "rate_limited", "Crazytel is rate limiting this account; try again in 30 seconds."),
    (10, 502, "upstream", "Crazytel answered with an error page (HTTP 502)."),
    (5, None, "unreachable", "Crazytel could not be reached (connection refused)."),
]
EVENTS = [
    (AuditKind.MEMBER_ADDED, {"member": "{user}", "role": "staff"}),
    (AuditKind.MEMBER_ROLE_CHANGED, {"member": "{user}", "from": "staff", "to": "manager"}),
    (AuditKind.MEMBER_REMOVED, {"member": "{user}"}),
    (AuditKind.CONNECTION_TESTED, {"ok": True, "balance": "118.40"}),
    (AuditKind.KEY_REPLACED, {"last4": "7c1f"}),
    (AuditKind.TENANT_UPDATED, {"changed": ["base_url"]}),
]


def _db_value(column: str, value):
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return json.dumps(value)
    if isinstance(value, str):
        return str(value)  # TextChoices members as plain text
    return value


def bench_tenant_ensure(i: int, users_per_tenant: int):
    """Bench tenant `i` (bench-01…) and its people (bench01-user01… ; the first a manager)."""
    tenant, _ = Tenant.objects.get_or_create(
        slug=f"bench-{i:02d}", defaults={"name": f"Bench tenant {i:02d}"}
    )
    User = get_user_model()
    users = []
    for j in range(1, users_per_tenant + 1):
        user, created = User.objects.get_or_create(username=f"bench{i:02d}-user{j:02d}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        Membership.objects.get_or_create(
            user=user, tenant=tenant, defaults={"role": Role.MANAGER if j == 1 else Role.STAFF}
        )
        users.append(user)
    return tenant, users


class Command(BaseCommand):
    help = (
        "Generate COUNT realistic, sealed audit records spread over --tenants bench tenants and "
        "the last --days days (chains valid: verify_audit passes). For benchmarks only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--tenants", type=int, default=20)
        parser.add_argument("--users-per-tenant", type=int, default=8)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--seed", type=int, default=6)
        parser.add_argument("--batch-size", type=int, default=20_000)

    def handle(self, *args, count, tenants, users_per_tenant, days, seed, batch_size, **options):
        if count < 1 or tenants < 1 or days < 1 or users_per_tenant < 1:
            raise CommandError(
                "--count, --tenants, --days and --users-per-tenant must be positive."
            )
        rng = random.Random(seed)  # noqa: S311 -- reproducible test data, not secrets
        began = time.monotonic()
        tenant_rows = [bench_tenant_ensure(i, users_per_tenant) for i in range(1, tenants + 1)]
        per_tenant = [count // tenants + (1 if i < count % tenants else 0) for i in range(tenants)]
        written = 0
        for (tenant, users), n in zip(tenant_rows, per_tenant, strict=True):
            written += self._generate_tenant(tenant, users, n, days, rng, batch_size)
            self.stdout.write(f"  {tenant.name}: {n} records")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # VACUUM sets the visibility map, so the chart's counts are index-only scans.
                # (It cannot run inside a transaction, as in tests: ANALYZE then.)
                verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
                cursor.execute(f"{verb} trunks_auditrecord")
        audit_cache_invalidate()  # written around trunks.audit.writer, so say so to the page caches
        elapsed = time.monotonic() - began
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {written} audit records for {tenants} tenant(s) in {elapsed:.1f} s "
                f"({written / max(elapsed, 0.001):,.0f}/s)."
            )
        )

    def _generate_tenant(self, tenant, users, n, days, rng, batch_size) -> int:
        now = timezone.now()
        span = days * 86_400
        offsets = sorted(rng.random() * span for _ in range(n))
        numbers = [f"614{rng.randrange(10**7, 10**8)}" for _ in range(6)] + [
            f"612{rng.randrange(10**7, 10**8)}" for _ in range(3)
        ]
        written = 0
        with transaction.atomic():
            # Writers sealing meanwhile wait on the positions written here (the unique chain
            # position), then seal after them; the tenant lock keeps two generators apart.
            Tenant.objects.select_for_update().only("id").get(pk=tenant.pk)
            last = (
                AuditRecord.objects.filter(tenant_id=tenant.pk, chain_seq__isnull=False)
                .order_by("-chain_seq")
                .values("chain_seq", "record_hash")
                .first()
            )
            seq = last["chain_seq"] if last else 0
            prev_hash = last["record_hash"] if last else ""
            batch = []
            for offset in reversed(offsets):
                started = now - timedelta(seconds=offset)
                record = self._record(tenant, rng.choice(users), started, numbers, rng)
                seq += 1
                record.chain_seq = seq
                record.prev_hash = prev_hash
                record.record_hash = record_hash_compute(record)
                prev_hash = record.record_hash
                batch.append(record)
                if len(batch) >= batch_size:
                    written += self._write(batch)
                    batch = []
            if batch:
                written += self._write(batch)
        return written

    def _record(self, tenant, user, started, numbers, rng) -> SimpleNamespace:
        base = {name: None for name in COLUMNS}
        base.update(
            # Identities are always fresh (a second run appends); the content follows the seed.
            uuid=uuid.uuid4(),
            tenant_id=tenant.pk,
            tenant_name=tenant.name,
            actor_id=user.pk,
            actor_username=user.username,
            client_ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            user_agent=rng.choice(AGENTS),
            request_id=f"{rng.getrandbits(128):032x}",
            caller_id_number="",
            description="",
            error_category="",
            error_message="",
            trunk_username="",
            trunk_id="",
            started_at=started,
        )
        record = SimpleNamespace(**base)
        if rng.random() < 0.05:
            kind, details = rng.choice(EVENTS)
            record.kind = kind
            record.data = {
                k: (v.format(user=f"staff{rng.randrange(100)}") if isinstance(v, str) else v)
                for k, v in details.items()
            }
            record.status = AuditStatus.SUCCEEDED
            record.finished_at = started
            record.duration_ms = 0
            return record
        caller = rng.choice(numbers)
        description = f"{rng.choice(PLACES)} {rng.choice(DEVICES)} {rng.randrange(1, 400)}"
        record.kind = AuditKind.TRUNK_CREATE
        record.data = {
            "caller_id_number": caller,
            "description": description,
            "area_code": rng.choice(["02", "03", "07", "08"]),
            "hide_caller_id": rng.random() < 0.1,
            "sms_sender": rng.choice([n for n in numbers if number_is_mobile_sender(n)]),
            "softphone_sync_sms": rng.random() < 0.3,
        }
        record.caller_id_number = caller
        record.description = description
        record.submission_token = uuid.uuid4().hex
        duration = int(rng.lognormvariate(6.3, 0.5))  # ~550 ms median
        record.finished_at = started + timedelta(milliseconds=duration)
        record.duration_ms = duration
        roll = rng.random()
        if roll < 0.85:
            record.status = AuditStatus.SUCCEEDED
            record.upstream_status = 201
            record.trunk_username = f"CT{rng.randrange(10**9, 10**10)}"
            record.trunk_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            record.response = {
                "id": record.trunk_id,
                "username": record.trunk_username,
                "enabled": True,
                "caller_id_number": caller,
            }
        elif roll < 0.97:
            weights = [f[0] for f in FAILURES]
            _w, upstream, category, message = rng.choices(FAILURES, weights=weights)[0]
            record.status = AuditStatus.FAILED
            record.upstream_status = upstream
            record.error_category = category
            record.error_message = message
        else:
            record.status = AuditStatus.UNKNOWN
            record.error_category = "unknown"
            record.error_message = "Crazytel did not answer in time; the trunk may exist."
            record.duration_ms = 20_000 + duration
            record.finished_at = started + timedelta(milliseconds=record.duration_ms)
        return record

    def _write(self, batch: list[SimpleNamespace]) -> int:
        if connection.vendor == "postgresql":
            return self._copy(batch)
        AuditRecord.objects.bulk_create(
            [AuditRecord(**{c: getattr(r, c) for c in COLUMNS}) for r in batch],
            batch_size=1000,
        )
        return len(batch)

    def _copy(self, batch: list[SimpleNamespace]) -> int:
        sql = f"COPY trunks_auditrecord ({', '.join(COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for record in batch:
                copy.write_row([_db_value(c, getattr(record, c)) for c in COLUMNS])
        return len(batch)
