"""`make bench`: the portal's own cost against its limits, each figure beside a reference.

Run `python -m tests.bench --help`. Not part of `make test` (no module here matches `test_*.py`);
tests/test_bench_smoke.py runs the machinery on tiny sizes so it does not rot.
"""
