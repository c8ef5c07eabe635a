"""`make bench` does not rot: its machinery runs end to end on tiny sizes and reports every figure.

No timing is asserted here (speed is the bench's business, on a quiet machine); only that each figure
was measured and is a positive number, or says plainly why it could not be.
"""

import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.bench.harness import Figure, at_most, figure, median, render_table
from tests.bench.upstream_budget import busiest_window

ROOT = Path(__file__).resolve().parents[2]
# Reasons a figure may be n/a without the bench being broken.
ACCEPTED_GAPS = ("feature missing", "wrk not installed")


def test_a_figure_knows_its_ratio_and_status_and_the_table_shows_gaps():
    fig = figure(
        "1", "page", 12.0, "ms", reference=4.0, reference_label="ref", target=at_most(3 * 4.0)
    )
    assert fig.ratio == 3.0
    assert fig.status == "PASS"
    missed = figure("1", "page", 13.0, "ms", reference=4.0, target=at_most(12.0))
    assert missed.status == "MISS"
    table = render_table(
        [fig, missed, Figure("2", "absent", None, "ms", note="feature missing: x")]
    )
    assert "| PASS" in table and "| MISS" in table and "n/a (feature missing: x)" in table
    assert median([5.0, 1.0, 3.0]) == 3.0


def test_busiest_window_counts_calls_within_sixty_seconds():
    assert busiest_window([]) == 0
    assert busiest_window([0, 10, 59, 60, 61, 200]) == 4  # 10, 59, 60 and 61 lie within 60 s
    assert busiest_window([0, 0, 0, 120]) == 3


def test_bench_smoke_run_reports_every_figure(tmp_path, migrated_sqlite):
    out = tmp_path / "bench.json"
    args = [sys.executable, "-m", "tests.bench", "--smoke", "--json", str(out)]
    # Its own database, never the one this test run (or a real bench) uses.
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        args += ["--db-name", f"bench_smoke_{uuid.uuid4().hex[:8]}"]
    else:
        # An empty migrated copy (tests/sqlite_template.py), which the bench uses as it finds it
        # (--keep-db) instead of migrating its own; tmp_path goes at the end.
        migrated_sqlite(tmp_path / "bench.sqlite3")
        args += ["--db-name", str(tmp_path / "bench.sqlite3"), "--keep-db"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| result |" in done.stdout

    results = json.loads(out.read_text())
    figures = results["figures"]
    assert results["meta"]["mode"] == "smoke"
    sections = {f["section"] for f in figures}
    assert sections == {"1", "2", "3", "4", "5", "6", "7", "8"}
    for fig in figures:
        if fig["value"] is None:
            assert fig["note"].startswith(ACCEPTED_GAPS), fig
            continue
        if "adds" in fig["name"]:  # a difference of two timings: any finite number
            assert math.isfinite(fig["value"]), fig
        else:
            assert fig["value"] > 0 or fig["unit"] == "calls/view", fig
        if fig["reference"] is not None:
            assert fig["reference"] > 0, fig
        assert fig["status"] in ("PASS", "MISS", "—"), fig
    # The ceiling is always measurable where wrk is installed.
    ceiling = next(f for f in figures if f["name"].startswith("ceiling /healthz"))
    assert ceiling["value"] is None or ceiling["value"] > 0
