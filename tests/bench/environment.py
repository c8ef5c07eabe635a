"""Where the bench runs: production-like settings, its own database, and live servers on loopback.

The bench never writes to the database `DATABASE_URL` names: it creates its own beside it
(`bench_<name>` on PostgreSQL, a temporary file on SQLite) the way Django's test runner does, and
drops it afterwards unless `--keep-db` asks to reuse the generated records next time.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.processes import listening_socket

BASE_DIR = Path(__file__).resolve().parents[2]
GUNICORN_CONFIG = BASE_DIR / "portal" / "gunicorn_conf.py"

# Production behaviour (DEBUG off: no query log, cached templates, manifest static files), served
# over plain HTTP on loopback, with the built-in sandbox standing in for Crazytel.
BENCH_ENVIRON = {
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "false",
    "SANDBOX_ENABLED": "true",
    "SANDBOX_ALLOW_WITHOUT_DEBUG": "true",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    # The benches' sessions are force_login()ed, as if the second factor had been shown.
    "SECOND_FACTOR_REQUIRED": "false",
    # The sandbox on loopback over http is the bench's Crazytel (the upstream allow-list, 16.9).
    "CRAZYTEL_UPSTREAM_HOSTS": "127.0.0.1,localhost",
    "CRAZYTEL_UPSTREAM_HTTP_ALLOWED": "true",
}


def prepare_environ(workdir: Path) -> None:
    """Set the bench's environment before Django is imported; subprocesses inherit it."""
    os.environ.update(BENCH_ENVIRON)
    os.environ["STATIC_ROOT"] = str(workdir / "static")
    # The console log would time the terminal (and the budget run's 429 warnings would bury the
    # table); errors still show.
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    # A .env written before audit checkpoints existed has no key; DEBUG off requires one.
    os.environ.setdefault("AUDIT_CHECKPOINT_KEY", "bench-only-audit-checkpoint-key-0123456789")


def django_setup() -> None:
    import django
    from django.conf import settings
    from django.urls import clear_url_caches, set_urlconf

    django.setup()
    # In this process only: the portal's URLs plus the bench's reference views.
    settings.ROOT_URLCONF = "tests.bench.urls"
    clear_url_caches()
    set_urlconf(None)
    # As a production server's worker settles once loaded (portal/wsgi.py): the in-process
    # figures and their same-run references both run with it.
    from portal.runtime import process_settle

    process_settle()


def collect_static() -> None:
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


class BenchDatabase:
    """The bench's own database, created (and migrated) beside the configured one."""

    def __init__(self, *, keep: bool, name: str | None, workdir: Path):
        self.keep = keep
        self.requested_name = name
        self.workdir = workdir
        self.old_name: str | None = None
        self.url = ""

    @property
    def vendor(self) -> str:
        from django.db import connection

        return connection.vendor

    def create(self) -> None:
        from django.db import connection

        settings_dict = connection.settings_dict
        if connection.vendor == "sqlite":
            if self.requested_name:
                name = self.requested_name
            elif self.keep:
                name = str(Path(tempfile.gettempdir()) / "crazytel-portal-bench.sqlite3")
            else:
                name = str(self.workdir / "bench.sqlite3")
        else:
            name = self.requested_name or f"bench_{settings_dict['NAME']}"
        settings_dict.setdefault("TEST", {})["NAME"] = name
        original_url = os.environ.get("DATABASE_URL", "")
        self.old_name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False, keepdb=self.keep
        )
        if connection.vendor == "sqlite":
            self.url = f"sqlite:///{name}"
        else:
            parts = urlsplit(original_url)
            self.url = urlunsplit(parts._replace(path=f"/{name}"))

    @property
    def name(self) -> str:
        from django.db import connection

        return str(connection.settings_dict["NAME"])

    def destroy(self) -> None:
        from django.db import connections

        if self.old_name is None:
            return
        connections.close_all()
        from django.db import connection

        connection.creation.destroy_test_db(self.old_name, verbosity=0, keepdb=self.keep)
        self.old_name = None


def fresh_process_run(module: str, *args: str, environ: dict[str, str]) -> dict:
    """`python -m module args…` in a fresh process (its memory and CPU its own), with `environ`
    added to this process's environment; returns the JSON object its last line of output prints."""
    import json

    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=BASE_DIR,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# The path of the requests that mark how far a server's access log has been written (not counted).
MARKER = "/healthz?access-log-marker="


class Gunicorn:
    """The portal served by gunicorn on loopback, on the bench's database."""

    def __init__(
        self,
        *,
        database_url: str,
        workdir: Path,
        name: str,
        workers: int = 2,
        threads: int = 1,
        access_log: bool = False,
        production_config: bool = False,
    ):
        self.name = name
        self.error_log = workdir / f"{name}-error.log"
        self.access_log = workdir / f"{name}-access.log" if access_log else None
        # gunicorn serves a socket that already listens here (fd://): a request sent before its
        # worker is ready waits in the socket's backlog instead of being refused, so readiness is
        # one request answered, not a poll; no other process can take the port meanwhile.
        listener = listening_socket()
        self.port = listener.getsockname()[1]
        cmd = [sys.executable, "-m", "gunicorn"]
        env = {**os.environ, "DATABASE_URL": database_url}
        if production_config:
            # The server production runs (portal/gunicorn_conf.py: its worker class, threads,
            # keep-alive, worker recycling, metrics directory), on the address and with the worker
            # count given here (the command line overrides the file).
            cmd += ["-c", str(GUNICORN_CONFIG)]
            env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / f"{name}-metrics")
        cmd += [
            "portal.wsgi:application",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            str(workers),
            "--error-logfile",
            str(self.error_log),
            "--log-level",
            "warning",
        ]
        if threads > 1:
            cmd += ["--threads", str(threads)]
        if self.access_log:
            # Epoch seconds are not an atom; the request time [%(t)s] has second resolution.
            cmd += [
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                '%(t)s "%(r)s" %(s)s',
            ]
        # The production config logs gunicorn's own errors to stderr (portal.logs), not to
        # --error-logfile: both end up in the error log read when the server does not start.
        with listener, open(self.error_log, "ab") as stderr:
            self.process = subprocess.Popen(
                cmd,
                cwd=BASE_DIR,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(listener.fileno(),),
            )
        # Closed here: gunicorn holds the only copy, so should it exit, a waiting request is reset.
        self._wait_ready()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 120.0) -> None:
        """One /healthz, answered once a worker has loaded the portal (slow on a busy machine)."""
        import requests

        try:
            status = requests.get(f"{self.base_url}/healthz", timeout=(5, timeout)).status_code
        except requests.RequestException as exc:
            status = exc
        if status == 200:
            return
        self.stop()
        raise RuntimeError(
            f"gunicorn ({self.name}) did not answer /healthz ({status}): {self._error_tail()}"
        )

    def _error_tail(self) -> str:
        try:
            return self.error_log.read_text()[-2000:]
        except OSError:
            return "(no error log)"

    def access_lines(self, timeout: float = 60.0) -> list[str]:
        """The access log's lines for every request answered so far. gunicorn writes a request's
        line just after answering it, so a running server is first sent a marker request, and the
        marker's own line waited for: a request answered before the marker was sent had its line
        written by its thread at once, while the marker was still to be read, routed and answered.
        A stopped server has written every line."""
        import requests

        if self.access_log is None:
            return []
        if self.process.poll() is None:
            marker = f"{MARKER}{uuid.uuid4().hex}"
            requests.get(f"{self.base_url}{marker}", timeout=timeout)
            deadline = time.monotonic() + timeout
            while marker not in self.access_log.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn ({self.name}) never logged {marker}")
                time.sleep(0.01)  # spares the CPU between reads; the line decides when to go on
        if not self.access_log.exists():
            return []
        return [line for line in self.access_log.read_text().splitlines() if MARKER not in line]

    def stop(self) -> None:
        self.stop_begin()
        self.stop_end()

    def stop_begin(self, *, quick: bool = False) -> None:
        """Asks gunicorn to stop: gracefully (requests in flight are answered and logged, and a
        kept-alive connection, such as the bench's own client's, is kept up to 2 s more for a
        request that may be on its way), or, `quick`, at once (SIGQUIT)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT if quick else signal.SIGTERM)

    def stop_end(self) -> None:
        """Waits for the stop asked for; a worker notices within its poll's second or so."""
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
