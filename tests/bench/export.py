"""4. Export: the whole audit table as CSV through the portal, rows/s and the process's peak RSS.

Each run is a fresh process (tests/bench/export_worker.py) on the bench database, so VmHWM is the
export's own high-water mark. The reference, run the same way, streams the same rows straight from
a server-side cursor through the csv module: what the database and Python cost without the portal.
"""

from .environment import fresh_process_run
from .harness import Figure, at_least, at_most, figure, median
from .portal import url_for

SECTION = "4"
FIGURES = [
    ("CSV export of every record: rows/s", "rows/s", "≥ 50,000 rows/s"),
    ("CSV export of every record: peak RSS", "MB", "≤ 150 MB"),
]


def worker(ctx, *args: str) -> dict:
    return fresh_process_run(
        "tests.bench.export_worker", *args, environ={"DATABASE_URL": ctx.db.url}
    )


def run(ctx) -> list[Figure]:
    url = url_for("audit:export-csv", "audit CSV export")
    rows = ctx.audit_records()
    runs = ctx.config.export_runs
    portal = [worker(ctx, "portal", url, ctx.root.username) for _ in range(runs)]
    reference = [worker(ctx, "reference") for _ in range(runs)]
    exported = portal[0]["rows"]
    note = f"{exported:,} rows of {rows:,}, {portal[0]['bytes'] / 1e6:.0f} MB"
    if not portal[0]["streaming"]:
        note += "; NOT streamed (the whole file was built in memory)"
    if runs > 1:
        note += f"; median of {runs} runs"
    return [
        figure(
            SECTION,
            FIGURES[0][0],
            median([r["rows_per_s"] for r in portal]),
            "rows/s",
            reference=median([r["rows_per_s"] for r in reference]),
            reference_label="cursor → csv, no portal",
            target=at_least(50_000, "rows/s"),
            note=note,
        ),
        figure(
            SECTION,
            FIGURES[1][0],
            median([r["peak_rss_mb"] for r in portal]),
            "MB",
            reference=median([r["peak_rss_mb"] for r in reference]),
            reference_label="cursor → csv, no portal",
            target=at_most(150, "MB"),
            note=f"the worker's RSS before exporting: {portal[0]['baseline_rss_mb']:.0f} MB",
        ),
    ]
