"""Benchmark: the audit log's pages on a large table, against Django admin's changelist.

Not a test (never timed in `make test`). Run it on PostgreSQL with a generated data set:

    createdb -h 127.0.0.1 -U postgres portal_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py audit_generate --count 1000000 --tenants 20
    .venv/bin/python -m tests.bench_audit [--runs 9] [--explain]

It measures, in one process and one run, the server time (request in, response out, through all
middleware and template rendering; median of --runs after warm-up) and the number of queries of:
the first page, filtered pages (full page and htmx swap), a deep page (900,000 records in), free
text, the chart fragment each page loads (cached, and with nothing cached: the cache is dropped
before each such run), an export's first rows, and the sum of a page and its chart fragment (what
a browser fetches); and Django admin's changelist on the same table (first page, filtered, deep,
search) as the reference. Figures are ratios within the run.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from trunks.audit.cache import audit_cache_invalidate  # noqa: E402
from trunks.audit.paging import AuditCursor  # noqa: E402
from trunks.models import AuditRecord, Membership, Role, Tenant  # noqa: E402

TARGET_MS = 150
TARGET_RATIO = 5


def _client(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def _get(client: Client, url: str, stream: bool, htmx: bool = False) -> None:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.get(url, secure=True, **headers)
    assert response.status_code == 200, (url, response.status_code)
    if stream:
        # The first 1,000 rows of an export: time to a useful download, memory flat.
        chunks = iter(response.streaming_content)
        for _ in range(1000):
            next(chunks, None)
        response.close()


def _measure_all(cases: list[tuple], runs: int) -> dict[str, dict]:
    """Time every case `runs` times, round-robin, so that load from other processes on the
    machine falls on the portal's pages and the admin reference alike. A "cold" case (the
    chart with nothing cached) has the audit cache dropped before each run, and a "cached" one
    is fetched once before each run (the cold cases drop the cache), both outside the timing."""
    clients = {label: _client(user) for label, user, *_rest in cases}
    results: dict[str, dict] = {}
    for label, _user, url, _ref, stream, htmx, cold in cases:
        if cold:
            audit_cache_invalidate()
        elif "cached" in label:
            _get(clients[label], url, stream, htmx)
        with CaptureQueriesContext(connection) as ctx:
            _get(clients[label], url, stream, htmx)
        results[label] = {
            "queries": len(ctx.captured_queries),
            "sql_ms": sum(float(q["time"]) for q in ctx.captured_queries) * 1000,
            "times": [],
        }
    reset_queries()
    with override_settings(DEBUG=False):
        for _ in range(runs):
            for label, _user, url, _ref, stream, htmx, cold in cases:
                if cold:
                    audit_cache_invalidate()
                elif "cached" in label:
                    _get(clients[label], url, stream, htmx)
                started = time.perf_counter()
                _get(clients[label], url, stream, htmx)
                results[label]["times"].append((time.perf_counter() - started) * 1000)
    for r in results.values():
        r["median_ms"] = statistics.median(r["times"])
        r["best_ms"] = min(r["times"])
    return results


def _explain(sql_user, url: str, htmx: bool = False) -> None:
    client = _client(sql_user)
    audit_cache_invalidate()  # so the chart's aggregate runs
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    with CaptureQueriesContext(connection) as ctx:
        client.get(url, secure=True, **headers)
    with connection.cursor() as cursor:
        for q in ctx.captured_queries:
            if "trunks_auditrecord" not in q["sql"]:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
            print(f"\n-- {url}\n{q['sql'][:300]}…")
            print("\n".join(row[0] for row in cursor.fetchall()))


def _cursor_at(queryset, offset: int) -> str:
    row = queryset.order_by("-started_at", "-id").values("started_at", "id")[offset]
    return str(AuditCursor(row["started_at"], row["id"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of each query"
    )
    parser.add_argument("--min-records", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    total = AuditRecord.objects.count()
    print(
        f"Database: {connection.vendor} {settings.DATABASES['default'].get('NAME')}; "
        f"{total:,} audit records in {Tenant.objects.count()} tenants"
    )
    if connection.vendor != "postgresql":
        print("WARNING: the target is PostgreSQL; figures on SQLite are not comparable.")
    if total < args.min_records:
        print(f"Generate the data first: manage.py audit_generate --count {args.min_records}")
        return 2

    User = get_user_model()
    root, _ = User.objects.get_or_create(
        username="bench-root", defaults={"is_superuser": True, "is_staff": True}
    )
    tenant = Tenant.objects.get(slug="bench-01")
    manager = Membership.objects.filter(tenant=tenant, role=Role.MANAGER).first().user
    staff = Membership.objects.filter(tenant=tenant, role=Role.STAFF).first().user
    today = timezone.localdate()
    week = (
        f"date_from={(today - timezone.timedelta(days=7)).isoformat()}&date_to={today.isoformat()}"
    )
    tenant_records = AuditRecord.objects.filter(tenant=tenant)
    tenant_count = tenant_records.count()
    deep_tenant = _cursor_at(tenant_records, int(tenant_count * 0.9))
    deep_all = _cursor_at(AuditRecord.objects.all(), int(total * 0.9))
    some_username = AuditRecord.objects.exclude(trunk_username="").values_list(
        "trunk_username", flat=True
    )[total // 2]

    failed_week = f"actor={staff.pk}&status=failed&{week}"

    def case(label, user, url, ref=None, *, stream=False, htmx=False, cold=False):
        return (label, user, url, ref, stream, htmx, cold)

    cases = [
        case("manager: first page", manager, "/audit/", "admin: first page"),
        case("manager: chart fragment, cached", manager, "/audit/chart/", htmx=True),
        case(
            "manager: chart fragment, nothing cached",
            manager,
            "/audit/chart/",
            htmx=True,
            cold=True,
        ),
        case(
            "manager: staff member's failed, last week",
            manager,
            f"/audit/?{failed_week}",
            "admin: filtered (status)",
        ),
        case(
            "manager: same filter as htmx swap (table)",
            manager,
            f"/audit/?{failed_week}",
            "admin: filtered (status)",
            htmx=True,
        ),
        case(
            "manager: its chart, nothing cached",
            manager,
            f"/audit/chart/?{failed_week}",
            htmx=True,
            cold=True,
        ),
        case("manager: unknown outcomes", manager, "/audit/?status=unknown"),
        case(
            "manager: deep page (90% in)",
            manager,
            f"/audit/?after={deep_tenant}",
            "admin: deep page (90% in)",
        ),
        case("superuser: first page (all tenants)", root, "/audit/", "admin: first page"),
        case("superuser: chart fragment, cached", root, "/audit/chart/", htmx=True),
        case(
            "superuser: chart fragment, nothing cached", root, "/audit/chart/", htmx=True, cold=True
        ),
        case(
            "superuser: filtered status=failed",
            root,
            "/audit/?status=failed",
            "admin: filtered (status)",
        ),
        case(
            "superuser: its chart, nothing cached",
            root,
            "/audit/chart/?status=failed",
            htmx=True,
            cold=True,
        ),
        case(
            "superuser: deep page (900,000 in)",
            root,
            f"/audit/?after={deep_all}",
            "admin: deep page (90% in)",
        ),
        case(
            "superuser: free text (trunk username)",
            root,
            f"/audit/?q={some_username[:9]}",
            "admin: search",
        ),
        case(
            "superuser: free text (description)", root, "/audit/?q=boardroom+fax", "admin: search"
        ),
        case("manager: CSV export, first 1,000 rows", manager, "/audit/export.csv", stream=True),
        case("admin: first page", root, "/admin/trunks/auditrecord/"),
        case("admin: filtered (status)", root, "/admin/trunks/auditrecord/?status__exact=failed"),
        case(
            "admin: deep page (90% in)",
            root,
            f"/admin/trunks/auditrecord/?p={int(total * 0.9) // 100}",
        ),
        case("admin: search", root, f"/admin/trunks/auditrecord/?q={some_username[:9]}"),
    ]
    print(f"Measuring {len(cases)} pages x {args.runs} runs, round-robin...", flush=True)
    results = _measure_all(cases, args.runs)

    print(f"\n{'page':<45} {'median':>9} {'best':>9} {'queries':>8} {'SQL':>8}  vs admin (median)")
    ok = True
    for label, _user, _url, ref, stream, _htmx, _cold in cases:
        r = results[label]
        ratio = ""
        if ref:
            factor = results[ref]["median_ms"] / r["median_ms"]
            ratio = f"{factor:5.1f}x faster than {ref}"
            ok &= factor >= TARGET_RATIO or ref == "admin: search"
        if not label.startswith("admin") and not stream:
            ok &= r["median_ms"] <= TARGET_MS
        print(
            f"{label:<45} {r['median_ms']:7.1f}ms {r['best_ms']:7.1f}ms {r['queries']:8d} "
            f"{r['sql_ms']:6.1f}ms  {ratio}"
        )

    # What a person receives on a full page load: the page, then its chart fragment.
    print("\nPage + its chart fragment (sum of medians), what a person's browser fetches:")
    for page, chart, ref in [
        ("manager: first page", "manager: chart fragment, cached", "admin: first page"),
        ("manager: first page", "manager: chart fragment, nothing cached", "admin: first page"),
        (
            "manager: staff member's failed, last week",
            "manager: its chart, nothing cached",
            "admin: filtered (status)",
        ),
        (
            "superuser: first page (all tenants)",
            "superuser: chart fragment, cached",
            "admin: first page",
        ),
        (
            "superuser: first page (all tenants)",
            "superuser: chart fragment, nothing cached",
            "admin: first page",
        ),
        (
            "superuser: filtered status=failed",
            "superuser: its chart, nothing cached",
            "admin: filtered (status)",
        ),
    ]:
        both = results[page]["median_ms"] + results[chart]["median_ms"]
        factor = results[ref]["median_ms"] / both
        print(f"  {page} + {chart.split(': ', 1)[1]:<24} {both:7.1f}ms  {factor:5.1f}x {ref}")

    page_queries = {
        r["queries"]
        for label, r in results.items()
        if label.startswith("manager") and "export" not in label and "chart" not in label
    }
    chart_queries = {r["queries"] for label, r in results.items() if "chart" in label}
    print(f"\nQueries per manager page: {sorted(page_queries)} (constant whatever the depth)")
    print(f"Queries per chart fragment (cached or not): {sorted(chart_queries)}")
    print(
        f"Targets: ≤ {TARGET_MS} ms per page, ≥ {TARGET_RATIO}x the admin changelist: "
        f"{'MET' if ok else 'NOT MET'}"
    )
    if args.explain:
        for label, user, url, _ref, stream, htmx, _cold in cases:
            if not label.startswith("admin") and not stream:
                _explain(user, url, htmx)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
