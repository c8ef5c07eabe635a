"""The production stack's shape: gunicorn's settings, docker-compose.yml against the Compose
Specification's schema, and gunicorn with three workers answering /metrics for all of them."""

import contextlib
import hashlib
import json
import os
import runpy
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import listening_socket

ROOT = Path(settings.BASE_DIR)
CONF = ROOT / "portal" / "gunicorn_conf.py"
SCHEMA = ROOT / "portal" / "ops" / "compose-spec.json"


def _conf(monkeypatch, **env) -> dict:
    """The config file's values. It sets PROMETHEUS_MULTIPROC_DIR in os.environ itself: setenv
    first, so that monkeypatch restores the original afterwards (later subprocesses must not
    inherit a directory this test removed)."""
    for name in ("PROMETHEUS_MULTIPROC_DIR", "GUNICORN_WORKERS", "GUNICORN_THREADS"):
        monkeypatch.setenv(name, "")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_gunicorn_reads_workers_and_threads_from_the_environment(monkeypatch, tmp_path):
    conf = _conf(
        monkeypatch,
        GUNICORN_WORKERS="5",
        GUNICORN_THREADS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (5, 2, "gthread")
    assert conf["max_requests"] > 0 and 0 < conf["max_requests_jitter"] < conf["max_requests"]
    assert conf["accesslog"] is None


def test_gunicorns_control_socket_is_off_unless_given_a_path_of_its_own(monkeypatch, tmp_path):
    """gunicorn's default control socket is one path per user: every server on the host would
    take it over from the others (the tests' and the bench's gunicorns did)."""
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    conf = _conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert conf["control_socket_disable"] is True and "control_socket" not in conf
    path = str(tmp_path / "portal.ctl")
    conf = _conf(monkeypatch, GUNICORN_CONTROL_SOCKET=path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert conf["control_socket_disable"] is False and conf["control_socket"] == path


def test_gunicorn_timeouts_fit_crazytels(monkeypatch, tmp_path):
    conf = _conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    one_call = settings.CRAZYTEL_CONNECT_TIMEOUT + settings.CRAZYTEL_TIMEOUT  # 25 s
    # Never killed while two upstream calls (numbers, then the create) may still answer...
    assert conf["timeout"] > 2 * (one_call + settings.CRAZYTEL_RATE_LIMIT_MAX_WAIT)
    # ...and a create in flight at shutdown may finish its call and record its outcome.
    assert conf["graceful_timeout"] > one_call
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grace = int(compose["services"]["web"]["stop_grace_period"].rstrip("s"))
    assert grace > conf["graceful_timeout"], "Docker must not kill before gunicorn's grace ends"
    slower = _conf(monkeypatch, CRAZYTEL_TIMEOUT="40", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert slower["timeout"] > 2 * (5 + 40) and slower["graceful_timeout"] > 45


def test_gunicorn_gets_a_metrics_directory_and_empties_it_at_start(monkeypatch, tmp_path):
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    with monkeypatch.context() as patched:
        conf = _conf(patched)
        made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") == before, "the environment is restored"
    assert made.is_dir() and made.name.startswith("portal-metrics-")
    made.rmdir()
    conf = _conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    conf["on_starting"](None)
    assert list(tmp_path.iterdir()) == []


LIVE_GAUGE = """
import os
from prometheus_client import Gauge
Gauge("portal_test_live", "x", multiprocess_mode="livesum").set(1)
print(os.getpid())
"""


def test_a_dead_workers_live_gauges_are_dropped(monkeypatch, tmp_path):
    conf = _conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    pid = subprocess.run(
        [sys.executable, "-c", LIVE_GAUGE],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (tmp_path / f"gauge_livesum_{pid}.db").exists()
    conf["child_exit"](None, SimpleNamespace(pid=int(pid)))
    assert not (tmp_path / f"gauge_livesum_{pid}.db").exists()


def test_docker_compose_follows_the_compose_specification():
    schema = json.loads(SCHEMA.read_text())
    note = (SCHEMA.parent / "compose-spec.README.md").read_text()
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() in note, "the source note is current"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # The schema is checked against its meta-schema once (jsonschema.validate() checks it again
    # on every call: ~0.5 CPU-s each), then one validator validates both documents.
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(compose)
    # The validator does catch a mistake (so the test above means something).
    broken = {**compose, "services": {"web": {**compose["services"]["web"], "restart": 3}}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


# --- gunicorn for real ----------------------------------------------------------------------------


def _get(url: str, token: str = "", timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def static_collect(root: Path) -> None:
    """`collectstatic` into `root` with the storage production uses without DEBUG (the hashed
    manifest and compressed copies), run in this process: the files, finders and storage are the
    portal's own, and a `manage.py collectstatic` of its own cost a whole Django start-up."""
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "portal.storage.StaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=str(root), STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)


@contextlib.contextmanager
def gunicorn_running(tmp_path, **overrides: str):
    """gunicorn with three workers on portal/gunicorn_conf.py, JSON logs to a file; `overrides`
    replace the environment (a database, a cache, the sandbox)."""
    listener = listening_socket()
    port = listener.getsockname()[1]
    token = "gunicorn-metrics-token-0123456789"
    log_path = tmp_path / "gunicorn.log"
    # O_APPEND: every process writes at the end, and the test reads through its own handle —
    # seeking a shared file description would move the servers' write position too.
    log = log_path.open("a")
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "gunicorn-test-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "CACHE_URL": "locmemcache://",
        "METRICS_TOKEN": token,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
        "GUNICORN_BIND": f"fd://{listener.fileno()}",
        "GUNICORN_WORKERS": "3",
        "GUNICORN_THREADS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "SANDBOX_ENABLED": "false",  # refused without DEBUG (sandbox.E001) unless allowed
        **overrides,
    }
    if "STATIC_ROOT" not in overrides:
        # DEBUG off serves the static manifest, as production does: the error pages use it.
        static_collect(Path(env["STATIC_ROOT"]))
    with listener:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF), "portal.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Waits in the socket's backlog for a worker (they import Django: slow on a loaded
        # machine); reset, should gunicorn exit instead.
        assert _get(f"{base}/healthz", timeout=120)[0] in (200, 503)
    except BaseException:
        server.kill()
        server.wait()
        log.close()
        raise
    try:
        yield SimpleNamespace(base=base, token=token, log_path=log_path, pid=server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def log_size(g) -> int:
    """Where the next line of the servers' log will start."""
    return g.log_path.stat().st_size


def log_lines(g, start: int = 0) -> list[dict]:
    """The JSON lines the servers wrote from byte `start` on, read through a handle of our own."""
    with g.log_path.open(encoding="utf-8") as log:
        log.seek(start)
        return [json.loads(line) for line in log if line.startswith("{")]


@pytest.fixture
def gunicorn_3_workers(tmp_path):
    with gunicorn_running(tmp_path) as g:
        yield g


def test_three_workers_one_metrics_endpoint(gunicorn_3_workers):
    """Every worker's requests are in any worker's answer to /metrics; lines are JSON."""
    g = gunicorn_3_workers
    before = _healthz_count(g)
    for _ in range(30):
        assert _get(f"{g.base}/healthz")[0] == 200
    assert _healthz_count(g) - before == 30
    assert _get(f"{g.base}/metrics")[0] == 404
    assert _get(f"{g.base}/metrics", token="wrong")[0] == 404

    lines = log_lines(g)
    served = [o for o in lines if o["logger"] == "portal.request" and o["route"] == "healthz"]
    assert len(served) >= 30
    assert {o["process"] for o in served} - {g.pid}, "workers, not the master, served"
    assert all(len(o["request_id"]) == 32 for o in served)


def _healthz_count(g) -> float:
    status, body = _get(f"{g.base}/metrics", token=g.token)
    assert status == 200
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "portal_http_requests_total" and sample.labels["route"] == "healthz":
                total += sample.value
    return total
