"""The portal's Prometheus metrics: one definition each, and the registry a scrape reads.

prometheus-client itself rather than django-prometheus: we want a handful of metrics with labels we
choose (route names, Crazytel endpoints, tenants' slugs — bounded sets), our own access rule on
/metrics, and collectors that read the database at scrape time; django-prometheus would add model,
cache and database wrappers we do not need and its own /metrics view.

Several gunicorn workers: with PROMETHEUS_MULTIPROC_DIR set (portal/gunicorn_conf.py sets it),
every process writes its counters to files there and a scrape, answered by any one worker, sums
them (prometheus-client's multiprocess mode). Figures read from the database are collected at scrape
time instead, by whichever worker answers.

The code that calls Crazytel or waits for the rate limiter records through the `*_observe` and
`*_count` functions below, so label names and values are decided here only.
"""

import logging
import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

# --- Requests served ----------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "portal_http_requests",
    "Requests the portal answered, by route name, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by route name and method.",
    ["route", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60),
)

# Each (route, method, status)'s counter and latency series, as labels() returns them: looked up
# here once, not through labels()' checks and lock on every request. prometheus-client keeps a
# series for good once made (nothing here removes one), so the two always name the same.
_HTTP_SERIES: dict[tuple[str, str, int], tuple] = {}


def http_request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration (portal.middleware.RequestIdMiddleware)."""
    key = (route, method, status)
    series = _HTTP_SERIES.get(key)
    if series is None:
        series = _HTTP_SERIES[key] = (
            HTTP_REQUESTS.labels(route=route, method=method, status=str(status)),
            HTTP_LATENCY.labels(route=route, method=method),
        )
    series[0].inc()
    series[1].observe(seconds)


# --- Crazytel (recorded by the client) ----------------------------------------------------------

# What became of one call: its status class, or why there was no status.
UPSTREAM_OUTCOMES = (
    "ok",  # 2xx
    "rejected",  # 4xx other than 429: Crazytel refused this request
    "rate_limited",  # 429
    "server_error",  # 5xx
    "unreachable",  # never arrived (DNS, connect refused, connect timeout)
    "unknown",  # may have arrived: read timeout, lost body
    "refused_locally",  # not sent: breaker open, bad key, limiter budget
)
UPSTREAM_CALLS = Counter(
    "portal_crazytel_requests",
    "Calls to Crazytel's API by endpoint (path template) and outcome.",
    ["endpoint", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "portal_crazytel_request_duration_seconds",
    "Duration of calls to Crazytel's API by endpoint and outcome.",
    ["endpoint", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 25, 30),
)

# --- The per-key rate limiter (recorded by the limiter) -----------------------------------------

LIMITER_WAITS = Counter(
    "portal_ratelimit_waits",
    "Calls that had to wait for a rate-limit token, by tenant.",
    ["tenant"],
)
LIMITER_WAIT_SECONDS = Histogram(
    "portal_ratelimit_wait_seconds",
    "How long calls waited for a rate-limit token, by tenant.",
    ["tenant"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
LIMITER_REFUSALS = Counter(
    "portal_ratelimit_refusals",
    "Calls refused before reaching Crazytel, by tenant and reason "
    "(budget: no token within the wait; retry_after: Crazytel's 429 pause; breaker: open circuit).",
    ["tenant", "reason"],
)
LIMITER_REFUSAL_REASONS = ("budget", "retry_after", "breaker")


def upstream_call_observe(*, endpoint: str, outcome: str, seconds: float) -> None:
    """One call to Crazytel. `endpoint` is the path template (`/sip-trunks/`, never an id)."""
    if outcome not in UPSTREAM_OUTCOMES:
        raise ValueError(f"unknown upstream outcome {outcome!r}")
    UPSTREAM_CALLS.labels(endpoint=endpoint, outcome=outcome).inc()
    UPSTREAM_LATENCY.labels(endpoint=endpoint, outcome=outcome).observe(seconds)


def upstream_outcome_for_status(status: int) -> str:
    """The outcome label of an answer with this HTTP status."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "rejected"


def limiter_wait_observe(*, tenant: str, seconds: float) -> None:
    """A call waited `seconds` for its token (call only when it did wait)."""
    LIMITER_WAITS.labels(tenant=tenant).inc()
    LIMITER_WAIT_SECONDS.labels(tenant=tenant).observe(seconds)


def limiter_refusal_count(*, tenant: str, reason: str) -> None:
    if reason not in LIMITER_REFUSAL_REASONS:
        raise ValueError(f"unknown refusal reason {reason!r}")
    LIMITER_REFUSALS.labels(tenant=tenant, reason=reason).inc()


# --- Read from the database at scrape time ------------------------------------------------------


class UnknownOutcomesCollector:
    """`portal_audit_unknown_open{tenant}`: trunk attempts whose outcome is unknown and that no
    manager has resolved yet — each may be a trunk that exists without the portal knowing."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count, Exists, OuterRef

        from trunks.models import AuditKind, AuditRecord, AuditStatus, Tenant

        gauge = GaugeMetricFamily(
            "portal_audit_unknown_open",
            "Trunk attempts whose outcome is unknown and not yet resolved, by tenant.",
            labels=["tenant"],
        )
        try:
            resolution = AuditRecord.objects.filter(
                kind=AuditKind.OUTCOME_RESOLVED, related_id=OuterRef("pk")
            )
            open_counts = dict(
                AuditRecord.objects.filter(kind=AuditKind.TRUNK_CREATE, status=AuditStatus.UNKNOWN)
                .exclude(Exists(resolution))
                .values("tenant_id")
                .annotate(n=Count("id"))
                .values_list("tenant_id", "n")
            )
            tenants = list(Tenant.objects.order_by("slug").values_list("id", "slug"))
        except Exception:
            # A scrape must still answer (with the process metrics) when the database is down.
            logger.warning("metrics: could not count unknown outcomes", exc_info=True)
            return
        for tenant_id, slug in tenants:
            gauge.add_metric([slug], open_counts.get(tenant_id, 0))
        yield gauge


class TaskQueueCollector:
    """`portal_tasks_queued{queue}` and `portal_tasks_oldest_age_seconds{queue}`: tasks waiting in
    django-tasks-db's table that a worker could run now, and how long the oldest has waited
    (tasks deferred to a later `run_after` are not waiting yet). A growing age means the workers
    are down or cannot keep up."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count, Min
        from django.utils import timezone
        from django_tasks_db.models import DBTaskResult

        queued = GaugeMetricFamily(
            "portal_tasks_queued",
            "Background tasks ready to run and not yet taken by a worker, by queue.",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "portal_tasks_oldest_age_seconds",
            "Age of the oldest background task ready to run and not yet taken, by queue.",
            labels=["queue"],
        )
        try:
            now = timezone.now()
            rows = list(
                DBTaskResult.objects.ready()
                .order_by()
                .values("queue_name")
                .annotate(n=Count("id"), first=Min("enqueued_at"))
                .values_list("queue_name", "n", "first")
            )
        except Exception:
            logger.warning("metrics: could not read the task queue", exc_info=True)
            return
        by_queue = {queue: (n, first) for queue, n, first in rows}
        # The default queue always answers, so an alert on it sees 0 rather than no data.
        by_queue.setdefault("default", (0, None))
        for queue, (n, first) in sorted(by_queue.items()):
            queued.add_metric([queue], n)
            oldest.add_metric([queue], max(0.0, (now - first).total_seconds()) if first else 0.0)
        yield queued
        yield oldest


SCRAPE_TIME_COLLECTORS = [UnknownOutcomesCollector, TaskQueueCollector]


class _ThisProcess:
    """The default registry's metrics (one process: runserver, tests) inside a scrape registry."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def scrape_registry() -> CollectorRegistry:
    """What one scrape answers: every process's metrics, then those read from the database."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in SCRAPE_TIME_COLLECTORS:
        registry.register(collector())
    return registry
