"""Generate many realistic Trunk records (benchmarks, demos): the trunks the portal would list.

Spread over the same bench tenants and people as `audit_generate` (bench-01…, bench01-user01…), with
usernames Crazytel's way (CT + 6 digits, none already recorded), written with COPY on PostgreSQL
or bulk_create elsewhere. The records have no audit attempt behind them (`created_record` empty,
as for trunks made before the portal kept attempts). Never run it against production data.
"""

import random
import time
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from trunks.models import Trunk, TrunkState

from .audit_generate import DEVICES, PLACES, bench_tenant_ensure

# Every column a generated trunk fills (the rest keep their database defaults: NULL).
COLUMNS = [
    "tenant_id",
    "trunk_id",
    "username",
    "caller_id_number",
    "sms_sender",
    "description",
    "area_code",
    "enabled",
    "hide_caller_id",
    "softphone_show_balance",
    "softphone_sync_sms",
    "state",
    "created_by_id",
    "created_by_username",
    "created_at",
    "updated_by_id",
    "updated_by_username",
    "updated_at",
    "password_changed_at",
    "version",
]
USERNAMES = 10**6  # CT000000 to CT999999: every username Crazytel can make


class Command(BaseCommand):
    help = (
        "Generate COUNT Trunk records spread over --tenants bench tenants (audit_generate's) and "
        "the last --days days. For benchmarks only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--tenants", type=int, default=20)
        parser.add_argument("--users-per-tenant", type=int, default=8)
        parser.add_argument("--days", type=int, default=730)
        parser.add_argument("--seed", type=int, default=13)
        parser.add_argument("--batch-size", type=int, default=20_000)

    def handle(self, *args, count, tenants, users_per_tenant, days, seed, batch_size, **options):
        if count < 1 or tenants < 1 or days < 1 or users_per_tenant < 1:
            raise CommandError(
                "--count, --tenants, --days and --users-per-tenant must be positive."
            )
        taken = set(Trunk.objects.values_list("username", flat=True))
        if count > USERNAMES - len(taken):
            raise CommandError(f"Only {USERNAMES - len(taken):,} trunk usernames are left.")
        rng = random.Random(seed)  # noqa: S311 -- reproducible test data, not secrets
        began = time.monotonic()
        people = [bench_tenant_ensure(i, users_per_tenant) for i in range(1, tenants + 1)]
        usernames = self._usernames(count, taken, rng)
        now = timezone.now()
        span = days * 86_400
        written = 0
        with transaction.atomic():
            batch = []
            for username in usernames:
                tenant, users = rng.choice(people)
                created_at = now - timedelta(seconds=rng.random() * span)
                batch.append(self._trunk(tenant, rng.choice(users), username, created_at, now, rng))
                if len(batch) >= batch_size:
                    written += self._write(batch)
                    batch = []
            if batch:
                written += self._write(batch)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
                cursor.execute(f"{verb} {Trunk._meta.db_table}")
        elapsed = time.monotonic() - began
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {written} trunks for {tenants} tenant(s) in {elapsed:.1f} s "
                f"({written / max(elapsed, 0.001):,.0f}/s)."
            )
        )

    def _usernames(self, count: int, taken: set[str], rng: random.Random) -> list[str]:
        """`count` distinct usernames drawn uniformly from those not `taken`."""
        if not taken:
            picked = rng.sample(range(USERNAMES), count)
        elif count + len(taken) <= USERNAMES // 2:
            # Drawn and redrawn while taken or already picked: the same uniform draw as sampling
            # the free numbers, without listing all million of them first (~0.4 CPU-s a call),
            # and fewer than two draws a name while at most half the names are in play.
            chosen: dict[int, None] = {}
            while len(chosen) < count:
                n = rng.randrange(USERNAMES)
                if f"CT{n:06d}" not in taken:
                    chosen[n] = None
            picked = list(chosen)
        else:
            picked = rng.sample([n for n in range(USERNAMES) if f"CT{n:06d}" not in taken], count)
        return [f"CT{n:06d}" for n in picked]

    def _trunk(self, tenant, user, username, created_at, now, rng) -> dict:
        caller = f"612{rng.randrange(10**7, 10**8)}"
        roll = rng.random()
        state = TrunkState.CONFIRMED
        if roll < 0.01:
            state = TrunkState.UNCONFIRMED
        elif roll < 0.015:
            state = TrunkState.MISSING
        changed = rng.random() < 0.3
        updated_at = created_at + (now - created_at) * rng.random() if changed else None
        return {
            "tenant_id": tenant.pk,
            # A few trunks whose create answer carried no id (listed as needing attention).
            "trunk_id": "" if rng.random() < 0.01 else str(uuid.UUID(int=rng.getrandbits(128))),
            "username": username,
            "caller_id_number": caller,
            "sms_sender": f"614{rng.randrange(10**7, 10**8)}" if rng.random() < 0.4 else "",
            "description": f"{rng.choice(PLACES)} {rng.choice(DEVICES)} {rng.randrange(1, 400)}",
            "area_code": rng.choice(["02", "03", "07", "08"]),
            "enabled": rng.random() >= 0.07,
            "hide_caller_id": rng.random() < 0.1,
            "softphone_show_balance": rng.random() < 0.8,
            "softphone_sync_sms": rng.random() < 0.3,
            "state": str(state),
            "created_by_id": user.pk,
            "created_by_username": user.username,
            "created_at": created_at,
            "updated_by_id": user.pk if changed else None,
            "updated_by_username": user.username if changed else "",
            "updated_at": updated_at,
            "password_changed_at": updated_at if changed and rng.random() < 0.5 else None,
            "version": 1 + (rng.randrange(1, 5) if changed else 0),
        }

    def _write(self, batch: list[dict]) -> int:
        if connection.vendor == "postgresql":
            sql = f"COPY {Trunk._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
            with connection.cursor() as cursor, cursor.copy(sql) as copy:
                for row in batch:
                    copy.write_row([row[c] for c in COLUMNS])
        else:
            Trunk.objects.bulk_create([Trunk(**row) for row in batch], batch_size=1000)
        return len(batch)
