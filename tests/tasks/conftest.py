"""Real worker processes (`manage.py worker`) against a database the test shares with them."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connections

from tests.processes import other_backends_end

DEADLINE = 60.0  # seconds: generous for a loaded, shared CI machine; a passing test takes far less


def wait_until(predicate: Callable[[], object], *, timeout: float = DEADLINE, what: str) -> object:
    """Poll `predicate` until it returns something true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _postgres_url(params: dict) -> str:
    auth = quote(params["USER"] or "", safe="")
    if params.get("PASSWORD"):
        auth += ":" + quote(params["PASSWORD"], safe="")
    return f"postgres://{auth}@{params['HOST'] or 'localhost'}:{params['PORT'] or 5432}/{params['NAME']}"


@pytest.fixture
def shared_database(transactional_db):
    """The test database, which another process can open; yields the DATABASE_URL a worker needs.
    Transactional, so the worker sees committed rows. On SQLite the test database is a file
    (tests/isolation.py): the worker opens the same file, and WAL lets both work on it."""
    database = connections["default"].settings_dict
    if connections["default"].vendor == "postgresql":
        yield _postgres_url(database)
        return
    yield f"sqlite:///{database['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: finishes the task in hand
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def start_worker(shared_database, tmp_path):
    """Start `manage.py worker` processes on the shared database; all are stopped afterwards."""
    workers: list[Worker] = []

    def start(*extra: str) -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        env = {**os.environ, "DATABASE_URL": shared_database, "PYTHONUNBUFFERED": "1"}
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "worker", "--no-reload", "--no-startup-delay",
                 "--interval", "0.05", *extra],
                cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        worker = Worker(process, log)
        workers.append(worker)
        wait_until(
            lambda: "Starting worker" in worker.output() or process.poll() is not None,
            what="the worker to start",
        )
        assert process.poll() is None, worker.output()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    other_backends_end()
