"""How `make test` hands the suite out to its workers (tests/scheduling.py)."""

from tests.scheduling import hand_out_order


def test_groups_go_first_then_the_heavy_single_tests_then_the_rest_in_collection_order():
    units = {
        "tests/audit/test_views.py::test_a": {"a": False},
        "tests/portal/test_bench_smoke.py::test_bench_smoke_run_reports_every_figure": {"b": False},
        "browser-1": {"c": False, "d": False, "e": False},
        "tests/audit/test_views.py::test_z": {"f": False},
        "tests/ops/test_stack.py::test_three_workers_one_metrics_endpoint": {"g": False},
        "browser-2": {"h": False, "i": False},
    }

    assert list(hand_out_order(units)) == [
        "browser-1",
        "browser-2",
        "tests/portal/test_bench_smoke.py::test_bench_smoke_run_reports_every_figure",
        "tests/ops/test_stack.py::test_three_workers_one_metrics_endpoint",
        "tests/audit/test_views.py::test_a",
        "tests/audit/test_views.py::test_z",
    ]
