"""How `make test` (pytest-xdist, `--dist loadgroup`) shares the suite between its workers (3).

The browser journeys are split, file by file, into one group per worker (at most four) of about the
same cost: each worker starts with one (one Chromium each), then takes the rest of the suite's tests
one by one as it frees up, so none waits long for the others at the end. A browser test spends most
of its time waiting (for the page, the live server, the sandbox's latency), so more workers than
CPUs still shorten the run. The OIDC sign-in tests stay together on one
worker, so one test provider (a Node.js process) starts for them, not one on each.

Done here, in the controller's scheduler, because `xdist_group` markers do nothing with pytest 9.2
and pytest-xdist 3.8: xdist tags the grouped tests by assigning `item._nodeid`, which pytest 9.2 no
longer reads (node ids live in `item._id`), so every "group" was scheduled test by test.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

E2E = "tests/e2e/"
MAX_BROWSER_GROUPS = 4
# Each browser test file's rough cost (CPU-seconds, Chromium's and the Node.js helpers' included, of
# the file run alone, less the ~4.5 s every such run spends starting pytest and Chromium: the machine
# is CPU-bound, so that is what the groups must share); a file not listed counts DEFAULT_WEIGHT. Only
# the split's balance depends on them; a wrong figure costs time, not a result. Measured 2026-12-01
# with a sampler of the process tree's CPU over /proc.
FILE_WEIGHTS = {
    "test_trunk_lifecycle_journey.py": 18,
    "test_every_page.py": 14,
    "test_staff_journey.py": 8,
    "test_admin_journey.py": 8,
    "test_admin_csp.py": 7,
    "test_manager_journey.py": 6,
    "test_login.py": 4,
    "test_bulk_journey.py": 3,
    "test_oidc_journey.py": 3,
    "test_second_factor_journey.py": 2,
    "test_audit_log_browser.py": 2,
    "test_browser_available.py": 0,
}
DEFAULT_WEIGHT = 3
# Single tests that start whole processes (gunicorns, workers, a bench run) and take 10-50 s of wall
# time: handed out right after the groups, so none of them is what the run waits for at the end.
HEAVY_TESTS = (
    "tests/portal/test_bench_smoke.py::",
    "tests/ops/test_stack.py::test_three_workers_one_metrics_endpoint",
    "tests/crazytel/test_contract.py::test_a_dropped_connection_under_gunicorn",
    "tests/bulk/test_worker.py::test_a_worker_process_creates_every_row_once",
    "tests/sandbox/test_sandbox.py::test_the_wsgi_start_up_refuses_the_sandbox_without_debug",
)
# Tests that share one expensive session fixture, kept on one worker: path prefix -> group.
SHARED_FIXTURE_GROUPS = {"tests/accounts/test_oidc_sign_in.py": "oidc-provider"}


def browser_group_names(workers: int) -> tuple[str, ...]:
    return tuple(f"browser-{i}" for i in range(1, max(1, min(workers, MAX_BROWSER_GROUPS)) + 1))


def browser_groups(file_names, workers: int = 2) -> dict[str, str]:
    """Each browser test file's group: the heaviest files first, each to the lightest group."""
    load = dict.fromkeys(browser_group_names(workers), 0)
    groups = {}
    for name in sorted(set(file_names), key=lambda n: (-FILE_WEIGHTS.get(n, DEFAULT_WEIGHT), n)):
        group = min(load, key=lambda g: (load[g], g))
        groups[name] = group
        load[group] += FILE_WEIGHTS.get(name, DEFAULT_WEIGHT)
    return groups


def group_of(nodeid: str, file_groups: dict[str, str]) -> str:
    """The work unit a test belongs to: a group name, or the test's own id (a unit of one)."""
    path = nodeid.split("::", 1)[0]
    if path.startswith(E2E):
        return file_groups.get(path[len(E2E) :], "browser-1")
    for prefix, group in SHARED_FIXTURE_GROUPS.items():
        if path.startswith(prefix):
            return group
    if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist_group suffix, should xdist set one again
        return nodeid.rsplit("@", 1)[-1]
    return nodeid


def hand_out_order(units: dict[str, dict]) -> OrderedDict:
    """Groups first (largest first, as xdist orders them), then the heavy single tests, then the rest."""

    def rank(item) -> int:
        scope, tests = item
        if len(tests) > 1:
            return 0
        return 1 if scope.startswith(HEAVY_TESTS) else 2

    return OrderedDict(sorted(units.items(), key=rank))


class CostGroupScheduling(LoadScopeScheduling):
    """pytest-xdist's loadgroup, with the groups above, handed out in `hand_out_order`."""

    def __init__(self, config, log=None):
        super().__init__(config, log)
        here = Path(__file__).resolve().parent / "e2e"
        self.file_groups = browser_groups(
            (path.name for path in here.glob("test_*.py")), workers=self.numnodes
        )

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid, self.file_groups)

    def _assign_work_unit(self, node) -> None:
        if not getattr(self, "_ordered", False):  # the first hand-out: the queue is complete
            self._ordered = True
            self.workqueue = hand_out_order(self.workqueue)
        super()._assign_work_unit(node)
