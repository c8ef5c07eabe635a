"""`python -m tests.bench`: set up, run every section, print one table, write the JSON file."""

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import environment
from .harness import FeatureMissing, Figure, Skipped, not_available, render_table, write_json


@dataclass
class Config:
    mode: str
    audit_rows: int
    repeats: int  # timed repeats of an in-process request (after warm-up)
    create_repeats: int  # timed creates through the portal (and as many direct calls)
    audit_repeats: int
    wrk_seconds: float
    budget_seconds: float
    wrk_rounds: int = 3  # rounds of /healthz, form, audit under wrk, in turn (medians)
    wrk_connections: int = 8
    wrk_pace_ms: int = 0  # each wrk connection's wait before each request (0: none, full speed)
    budget_staff: int = 10
    trunk_rows: int = 100_000  # trunks in the table /trunks/ pages through (section 7)
    bulk_rows: tuple[int, int] = (100, 1000)  # the bulk jobs a worker runs, small then large (8)
    bench_tenants: int = 20  # tenants (8 people each) the generated records spread over
    export_runs: int = 3  # each export (and its reference) runs this many times, in fresh processes
    server_workers: int = 2  # gunicorn workers of each server the bench starts
    keep_db: bool = False
    db_name: str | None = None
    json_path: Path = environment.BASE_DIR / "bench-results.json"
    only: frozenset[str] = frozenset()


MODES = {
    "full": dict(
        audit_rows=1_000_000,
        repeats=40,
        create_repeats=30,
        audit_repeats=15,
        wrk_seconds=10,
        budget_seconds=75,
        # One export of a million rows is itself a long average; three would take many minutes.
        export_runs=1,
    ),
    "quick": dict(
        audit_rows=20_000,
        repeats=20,
        create_repeats=15,
        audit_repeats=9,
        wrk_seconds=5,
        budget_seconds=15,
        export_runs=2,
        trunk_rows=5_000,
        bulk_rows=(50, 300),
    ),
    # The smoke test's sizes: every code path, no meaningful numbers, as little CPU as will do
    # (one gunicorn worker per server, two staff for a second and a half: still concurrent; one
    # timed repeat of each request after its warm-up: a median of one is still a median).
    "smoke": dict(
        audit_rows=300,
        repeats=1,
        create_repeats=1,
        audit_repeats=1,
        wrk_seconds=1,
        budget_seconds=1.5,
        export_runs=1,
        budget_staff=2,
        server_workers=1,
        trunk_rows=200,
        bulk_rows=(2, 6),
        # Each bench tenant is 8 users and memberships made one by one: 2 tenants is every path.
        bench_tenants=2,
        wrk_rounds=1,
        # wrk at full speed kept the server's worker busy for every second of every round (3 of
        # the smoke run's 10 CPU-seconds): two connections, a request every 100 ms each.
        wrk_connections=2,
        wrk_pace_ms=100,
    ),
}


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Measure the portal's own cost against its limits (see README, Performance).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_const",
        dest="mode",
        const="quick",
        help="small data, under ~2 minutes",
    )
    mode.add_argument(
        "--smoke",
        action="store_const",
        dest="mode",
        const="smoke",
        help="tiny sizes (the smoke test)",
    )
    parser.add_argument("--rows", type=int, help="audit records to generate (full: 1,000,000)")
    parser.add_argument("--trunks", type=int, help="trunks to generate (full: 100,000)")
    parser.add_argument("--repeats", type=int, help="timed repeats per in-process figure")
    parser.add_argument("--only", default="", help="comma-separated sections to run, e.g. 1,3")
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="keep the bench database (and its records) for the next run",
    )
    parser.add_argument(
        "--db-name", help="the bench database's name (default bench_<name>; SQLite: a file path)"
    )
    parser.add_argument(
        "--json", type=Path, help="where to write the figures (default bench-results.json)"
    )
    args = parser.parse_args(argv)
    mode_name = args.mode or "full"
    values = dict(MODES[mode_name])
    if args.rows is not None:
        values["audit_rows"] = args.rows
    if args.repeats is not None:
        values["repeats"] = args.repeats
    if args.trunks is not None:
        values["trunk_rows"] = args.trunks
    config = Config(mode=mode_name, keep_db=args.keep_db, db_name=args.db_name, **values)
    if args.json:
        config.json_path = args.json
    config.only = frozenset(s.strip() for s in args.only.split(",") if s.strip())
    return config


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        memory = "unknown"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
    }


def describe_stack(db) -> dict[str, str]:
    from django.conf import settings
    from django.db import connection

    with connection.cursor():
        if connection.vendor == "sqlite":
            version = ".".join(str(p) for p in connection.Database.sqlite_version_info)
        else:
            version = f"{connection.pg_version // 10000}.{connection.pg_version % 100}"
    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return {
        "database": f"{connection.vendor} {version}",
        "cache": cache,
        "conn_max_age": str(settings.DATABASES["default"].get("CONN_MAX_AGE", 0)),
    }


def main(argv: list[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    environment.prepare_environ(workdir)
    environment.django_setup()
    environment.collect_static()

    from . import (
        audit_scale,
        bulk_job,
        create_overhead,
        export,
        form_page,
        throughput,
        trunk_scale,
        upstream_budget,
    )
    from .context import Context

    sections = [
        form_page,
        create_overhead,
        audit_scale,
        export,
        throughput,
        upstream_budget,
        trunk_scale,
        bulk_job,
    ]
    if config.only:
        sections = [s for s in sections if s.SECTION in config.only]

    db = environment.BenchDatabase(keep=config.keep_db, name=config.db_name, workdir=workdir)
    figures: list[Figure] = []
    errors = 0
    started = time.monotonic()
    load_before = os.getloadavg()
    ctx = None
    try:
        db.create()
        stack = describe_stack(db)
        ctx = Context(config=config, db=db, workdir=workdir, log=log)
        for section in sections:
            log(f"section {section.SECTION}: {section.__doc__.splitlines()[0]}")
            try:
                figures += section.run(ctx)
            except FeatureMissing as missing:
                figures += [
                    not_available(section.SECTION, n, u, f"feature missing: {missing}", t)
                    for n, u, t in section.FIGURES
                ]
            except Skipped as skipped:
                figures += [
                    not_available(section.SECTION, n, u, str(skipped), t)
                    for n, u, t in section.FIGURES
                ]
            except Exception as exc:
                errors += 1
                traceback.print_exc()
                reason = (
                    f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[
                        :120
                    ]
                )
                figures += [
                    not_available(section.SECTION, n, u, reason, t) for n, u, t in section.FIGURES
                ]
    finally:
        if ctx is not None:
            ctx.close()
        db.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    meta = {
        "mode": config.mode,
        "audit_rows": config.audit_rows,
        "repeats": config.repeats,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "load_average_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_average_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": " ".join(["python -m tests.bench", *(sys.argv[1:] if argv is None else argv)]),
        **machine(),
        **stack,
    }
    header = (
        f"make bench ({config.mode}: {config.audit_rows:,} audit records, median of {config.repeats} "
        f"repeats) on {meta['database']}, cache {meta['cache']}, CONN_MAX_AGE={meta['conn_max_age']}; "
        f"{meta['nproc']} CPU {meta['cpu']}, {meta['memory']}; {meta['duration_s']} s; "
        f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print(render_table(figures, header))
    write_json(config.json_path, figures, meta)
    print(f"\nFigures written to {config.json_path}")
    return 1 if errors or (ctx is not None and ctx.errors) else 0


def log(message: str) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[bench {now}Z] {message}", file=sys.stderr, flush=True)
