"""gunicorn's settings for the portal: `gunicorn -c portal/gunicorn_conf.py portal.wsgi`.

Every number comes from the environment, with defaults fitted to Crazytel's limits: a trunk create
may wait CRAZYTEL_RATE_LIMIT_MAX_WAIT for a token, then CRAZYTEL_CONNECT_TIMEOUT + CRAZYTEL_TIMEOUT
(5 + 20 s) for Crazytel, and a form may make two such calls (verified numbers, then the create).
A worker is only killed when a request outlives all that; on shutdown or reload, a request in
flight gets one whole upstream call to finish and record its outcome (no orphan `pending`).
"""

import math
import os
import shutil
import tempfile

from portal.logs import logging_config


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {raw!r}") from None


UPSTREAM_CALL_SECONDS = _number("CRAZYTEL_CONNECT_TIMEOUT", 5) + _number("CRAZYTEL_TIMEOUT", 20)
UPSTREAM_REQUEST_SECONDS = 2 * (UPSTREAM_CALL_SECONDS + _number("CRAZYTEL_RATE_LIMIT_MAX_WAIT", 1))

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(_number("GUNICORN_WORKERS", 3))
# Threads: a request waiting on Crazytel must not hold up the worker's other requests.
threads = int(_number("GUNICORN_THREADS", 4))
worker_class = "gthread"
timeout = int(_number("GUNICORN_TIMEOUT", max(60, math.ceil(UPSTREAM_REQUEST_SECONDS + 10))))
graceful_timeout = int(_number("GUNICORN_GRACEFUL_TIMEOUT", math.ceil(UPSTREAM_CALL_SECONDS + 5)))
keepalive = int(_number("GUNICORN_KEEPALIVE", 5))
# Recycle workers now and then (a slow leak stays small); the jitter keeps them from all
# restarting at once. Not too often: a new worker loads Django and the portal again (~0.6 CPU-s,
# its threads' connections waiting meanwhile), which every 1,000 requests cost as much CPU as the
# requests themselves under sustained load (bench section 5: /healthz at ~0.8 ms each).
max_requests = int(_number("GUNICORN_MAX_REQUESTS", 10_000))
max_requests_jitter = int(_number("GUNICORN_MAX_REQUESTS_JITTER", 1_000))
# gunicorn's control socket (gunicornc) defaults to one path per user: every gunicorn on a host —
# two portals, the tests' and the bench's servers — would take it over from the others. The portal
# does not use it; GUNICORN_CONTROL_SOCKET=/run/portal/gunicorn.ctl turns it on at a path of its own.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"].strip()

# The proxy in front sets X-Forwarded-Proto; the client address is the portal's own business
# (TRUSTED_PROXY_COUNT), not gunicorn's.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")

# The portal logs each request itself (portal.request, with route, user and request id), so no
# access log; gunicorn's own messages go through the same formatter as the portal's.
accesslog = None
logconfig_dict = logging_config(
    log_format=os.environ.get("LOG_FORMAT", "json").strip().lower() or "json",
    level=os.environ.get("LOG_LEVEL", "INFO"),
)

# Metrics from every worker: prometheus-client's multiprocess mode needs a directory shared by the
# workers, empty when the server starts, set before any worker imports prometheus_client.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-metrics-")


def on_starting(server) -> None:
    """Files left by an earlier run would be summed into this one's counters: start empty."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        target = os.path.join(path, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        else:
            os.remove(target)


def child_exit(server, worker) -> None:
    """A worker ended (recycled, killed or shut down): drop its live gauges; counters stay summed."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
