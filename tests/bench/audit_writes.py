"""`python -m tests.bench.audit_writes [N] [--db-name NAME]`: the thread's CPU time of the audit
writes a successful create makes, called directly (no request, no upstream call, no profiler):
the pending record committed (audit_attempt_start), then the final record sealed with its Trunk
record and the audit cache's bump (audit_attempt_finish with commit_with).

Sets up as `tests.bench.profile` does (production settings, its own database: `--db-name`, or as
`make bench` names it; the configured cache), one tenant and one staff member, then runs N creates'
writes (default 400) after a few to warm up, and prints the median, mean and 90th percentile of
each step and of both, and the SQL statements of one create's writes.

    DATABASE_URL=postgres://…/x CACHE_URL=redis://…/9 .venv/bin/python -m tests.bench.audit_writes
"""

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import environment

DATA = {
    "caller_id_number": "61290000001",
    "description": "bench trunk",
    "area_code": "02",
    "enabled": True,
    "hide_caller_id": False,
    "softphone_show_balance": True,
    "softphone_sync_sms": False,
    "sms_sender": "61400000001",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.audit_writes", description=__doc__)
    parser.add_argument("n", type=int, nargs="?", default=400, help="creates' writes timed")
    parser.add_argument("--db-name", help="the database to create (default as make bench)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="portal-audit-writes-"))
    environment.prepare_environ(workdir)
    environment.django_setup()
    db = environment.BenchDatabase(keep=False, name=args.db_name, workdir=workdir)
    try:
        db.create()
        run(args.n)
    finally:
        db.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def run(n: int) -> None:
    from django.test import RequestFactory

    from trunks.audit.writer import audit_attempt_finish, audit_attempt_start
    from trunks.lifecycle.records import trunk_row_from_attempt
    from trunks.models import AuditStatus, Role

    from .portal import member_add, queries_count, statements_during, tenant_create, user_create

    tenant = tenant_create(
        slug="bench-writes",
        name="Bench writes",
        base_url="http://127.0.0.1:9/unreachable",
        api_key="bench-writes-" + secrets.token_hex(8),
    )
    user = user_create("bench-writes")
    member_add(user=user, tenant=tenant, role=Role.STAFF)
    request = RequestFactory().post("/trunks/new/", HTTP_USER_AGENT="Mozilla/5.0 (bench) writes")
    request.user = user
    request.client_ip = "127.0.0.1"
    request.request_id = secrets.token_hex(8)
    counter = iter(range(10**9))

    def writes() -> tuple[int, int]:
        i = next(counter)
        start = time.thread_time_ns()
        record = audit_attempt_start(
            tenant=tenant,
            actor=user,
            request=request,
            data=DATA,
            submission_token=f"bench-writes-{i}-{secrets.token_hex(8)}",
        )
        started = time.thread_time_ns()
        username = f"CT{i:07d}"
        audit_attempt_finish(
            record=record,
            status=AuditStatus.SUCCEEDED,
            upstream_status=200,
            trunk_username=username,
            trunk_id=str(100000 + i),
            response={"id": 100000 + i, "username": username, **DATA},
            commit_with=lambda final: trunk_row_from_attempt(
                attempt=final, username=username, trunk_id=final.trunk_id
            ),
        )
        return started - start, time.thread_time_ns() - started

    for _ in range(20):
        writes()
    statements = statements_during(writes)
    samples = [writes() for _ in range(n)]
    print(
        f"{environment_line()}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {n} creates' writes"
    )
    for label, values in (
        ("pending record committed", [s[0] for s in samples]),
        ("final record sealed (+ Trunk, bump)", [s[1] for s in samples]),
        ("both", [s[0] + s[1] for s in samples]),
    ):
        values.sort()
        print(
            f"  {label:36} median {statistics.median(values) / 1e6:6.3f} ms CPU, "
            f"mean {statistics.mean(values) / 1e6:6.3f}, p90 {values[len(values) * 9 // 10] / 1e6:6.3f}"
        )
    print(f"SQL of one create's writes ({queries_count(statements)} queries):")
    for sql, ms in statements:
        print(f"  {ms:6.2f} ms  {' '.join(sql.split())[:150]}")
    sys.stdout.flush()


def environment_line() -> str:
    from django.conf import settings
    from django.db import connection

    return f"{connection.vendor}, cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}"


if __name__ == "__main__":
    sys.exit(main())
