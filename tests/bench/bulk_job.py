"""8. Bulk jobs: the worker's own time per row beside the upstream call, and its memory as rows grow.

Two jobs of one tenant (a small one, then a large one: 100 and 1,000 rows) are checked and made the
way an upload is (`bulk_file_check`, `bulk_job_create`), then worked by the real `manage.py worker`
in a fresh process (tests/bench/bulk_job_worker.py) against the built-in sandbox on its own gunicorn.
The worker times each `create_sip_trunk` call where it makes it: the job's time minus those calls is
the portal's (claiming, the audit attempt and its seal, the Trunk record, the job's bookkeeping, the
queue). Peak RSS after the small job against after the large one: flat means no growth with rows.

The rate limit would make 1,000 rows take 17 minutes; the bench measures the portal, not the wait.
So the sandbox account's limit is off (`rate_limit_per_minute=0`) and the worker process runs with
CRAZYTEL_RATE_LIMIT_PER_MINUTE=1000000: the shared limiter still takes a token for every row (its
cost is counted), it just never makes the worker wait.
"""

import secrets

from .environment import fresh_process_run
from .harness import FeatureMissing, Figure, Target, at_most, figure

SECTION = "8"
TARGET_MS = 20
FLAT_MB = 5.0
FIGURES = [
    ("bulk job: portal time per row, beside the upstream call", "ms", f"≤ {TARGET_MS} ms"),
    ("bulk job: worker CPU per row, outside the upstream call", "ms", ""),
    ("bulk worker: peak RSS after the large job", "MB", f"≤ {FLAT_MB:g} MB more than the small"),
]
# The worker's own limiter never waits (see above); the sandbox's limit is off for this account.
WORKER_ENVIRON = {"CRAZYTEL_RATE_LIMIT_PER_MINUTE": "1000000"}


def jobs_make(ctx, sizes: tuple[int, ...]) -> list[int]:
    """Draft jobs of `sizes` rows for a staff member of a tenant keyed to its own sandbox account."""
    from trunks.bulk.checks import bulk_file_check
    from trunks.bulk.services import bulk_job_create
    from trunks.crazytel.parsing import VerifiedNumber
    from trunks.models import Role
    from trunks.provisioning.numbers import VerifiedNumbers

    from .portal import member_add, sandbox_account_create, tenant_create, user_create

    api_key = f"bench-bulk-{secrets.token_hex(12)}"
    account = sandbox_account_create(api_key=api_key, name=f"Bench bulk {api_key[-6:]}")
    account.rate_limit_per_minute = 0
    account.save(update_fields=["rate_limit_per_minute"])
    tenant = tenant_create(
        slug="bench-bulk", name="Bench bulk", base_url=ctx.sandbox_api_url(), api_key=api_key
    )
    owner = user_create("bench-bulk-staff")
    member_add(user=owner, tenant=tenant, role=Role.STAFF)
    numbers = VerifiedNumbers(
        numbers=tuple(
            VerifiedNumber(number=n["number"], label=n.get("label", ""))
            for n in account.verified_numbers
        )
    )
    landline = next(n.number for n in numbers.numbers if not n.number.startswith("614"))
    ids = []
    for size in sizes:
        text = "caller_id_number,description,area_code\n" + "".join(
            f"{landline},Bench desk {i},02\n" for i in range(1, size + 1)
        )
        checked = bulk_file_check(raw=text.encode(), name=f"bench-{size}.csv", numbers=numbers)
        if not checked.ok:
            raise RuntimeError(f"the bench's file did not pass the checks: {checked.errors}")
        ids.append(bulk_job_create(actor=owner, tenant=tenant, checked=checked).pk)
    return ids


def worker(ctx, job_ids: list[int]) -> dict:
    return fresh_process_run(
        "tests.bench.bulk_job_worker",
        *map(str, job_ids),
        environ={"DATABASE_URL": ctx.db.url, **WORKER_ENVIRON},
    )


def run(ctx) -> list[Figure]:
    try:
        from trunks.bulk.work import bulk_job_work  # noqa: F401
    except ImportError:
        raise FeatureMissing("bulk jobs") from None
    if not ctx.sandbox_available():
        raise FeatureMissing("sandbox")
    small, large = ctx.config.bulk_rows
    job_ids = jobs_make(ctx, (small, large))
    ctx.log(f"a worker process runs a {small}-row job, then a {large}-row job")
    result = worker(ctx, job_ids)
    first, second = result["jobs"]
    for job in (first, second):
        if job["status"] != "finished" or job["counts"]["created"] != job["rows"]:
            raise RuntimeError(f"a bench job did not create every row: {job}")
    rows = second["rows"]
    per_row = (second["wall_ms"] - second["upstream_ms"]) / rows
    upstream_per_row = second["upstream_ms"] / rows
    cpu_per_row = (second["cpu_ms"] - second["upstream_cpu_ms"]) / rows
    growth = second["peak_rss_mb"] - first["peak_rss_mb"]
    calls = (
        f"{second['calls']} upstream calls for {rows} rows ({second['creates']} creates), "
        f"{second['queries'] / rows:.1f} SQL statements and "
        f"{second.get('redis_commands', 0) / rows:.1f} Redis commands per row"
    )
    return [
        figure(
            SECTION,
            FIGURES[0][0],
            per_row,
            "ms",
            reference=upstream_per_row,
            reference_label="the upstream call, per row",
            target=at_most(TARGET_MS, "ms"),
            note=(
                f"{rows} rows in {second['wall_ms'] / 1000:.1f} s, of which "
                f"{second['upstream_ms'] / 1000:.1f} s in create_sip_trunk; {calls}; "
                "limiter at 1,000,000/min, sandbox limit off"
            ),
        ),
        figure(
            SECTION,
            FIGURES[1][0],
            cpu_per_row,
            "ms",
            reference=second["upstream_cpu_ms"] / rows,
            reference_label="client CPU in the upstream call",
            note="the worker process's CPU time (all threads) minus the client call's thread CPU",
        ),
        figure(
            SECTION,
            FIGURES[2][0],
            second["peak_rss_mb"],
            "MB",
            reference=first["peak_rss_mb"],
            reference_label=f"after the {first['rows']}-row job",
            target=Target(
                f"≤ {FLAT_MB:g} MB more than after {first['rows']} rows",
                lambda f: growth <= FLAT_MB,
            ),
            note=(
                f"+{growth:.1f} MB from {first['rows']} to {first['rows'] + rows} rows worked; "
                f"{result['baseline_rss_mb']:.0f} MB before the first job"
            ),
        ),
    ]
