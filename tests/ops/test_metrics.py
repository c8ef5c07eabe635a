"""/metrics: served only with the token or from an allowed network, counting exactly what happened,
summing several processes' counters, and naming in the alert rules only metrics that exist."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from portal import metrics
from tests.factories import audit_attempt
from trunks.audit.writer import audit_event_record
from trunks.models import AuditKind

TOKEN = "metrics-token-for-tests-0123456789"
ALERTS = Path(django_settings.BASE_DIR) / "portal" / "ops" / "alerts.yml"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []


def scrape(client=None) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, by (name, sorted labels)."""
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_without_token_or_network_it_is_a_404(db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics").status_code == 404
    # Even a bearer header gets nothing when no token is configured.
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_a_wrong_or_missing_token_is_a_404(metrics_token, db):
    client = Client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 404
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert b"portal_http_requests_total" in ok.content


def test_an_allowed_network_needs_no_token(db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "fd00::/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="fd00::5").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.1").get("/metrics").status_code == 404


def test_the_network_is_the_client_address_trusted_proxies_report(db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy (10.0.0.2) is inside the network; the client it reports is not.
    outside = Client(REMOTE_ADDR="10.0.0.2").get(
        "/metrics", headers={"X-Forwarded-For": "198.51.100.7"}
    )
    assert outside.status_code == 404
    inside = Client(REMOTE_ADDR="10.0.0.2").get("/metrics", headers={"X-Forwarded-For": "10.9.9.9"})
    assert inside.status_code == 200


def test_requests_are_counted_by_route_and_status_with_latency(metrics_token, db):
    client = Client()
    before = scrape(client)
    for _ in range(3):
        assert client.get("/accounts/login/").status_code == 200
    client.get("/no/such/page")
    after = scrape(client)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("portal_http_requests_total", route="login", method="GET", status="200") == 3
    assert moved("portal_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert moved("portal_http_request_duration_seconds_count", route="login", method="GET") == 3
    assert (
        moved("portal_http_request_duration_seconds_bucket", route="login", method="GET", le="+Inf")
        == 3
    )


def test_unknown_outcomes_open_per_tenant(metrics_token, tenant_a, tenant_b, alice, adam):
    audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
    resolved = audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
    audit_attempt(tenant=tenant_a, actor=alice, status="failed")
    audit_event_record(
        kind=AuditKind.OUTCOME_RESOLVED, tenant=tenant_a, actor=adam, related=resolved
    )
    samples = scrape()
    assert samples[("portal_audit_unknown_open", (("tenant", "alpha"),))] == 1
    assert samples[("portal_audit_unknown_open", (("tenant", "bravo"),))] == 0


def test_the_task_queue_depth_and_oldest_age(metrics_token, db):
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    empty = scrape()
    assert empty[("portal_tasks_queued", (("queue", "default"),))] == 0
    assert empty[("portal_tasks_oldest_age_seconds", (("queue", "default"),))] == 0
    now = timezone.now()
    fields = dict(
        task_path="portal.tasks.task_results_prune", args_kwargs={}, backend_name="default"
    )
    for queue, age, status in [
        ("default", 300, "READY"),
        ("default", 60, "READY"),
        ("default", 900, "RUNNING"),  # taken by a worker: not waiting
        ("bulk", 30, "READY"),
    ]:
        task = DBTaskResult.objects.create(
            queue_name=queue, status=status, run_after=now - timedelta(seconds=1), **fields
        )
        DBTaskResult.objects.filter(pk=task.pk).update(enqueued_at=now - timedelta(seconds=age))
    DBTaskResult.objects.create(  # deferred to later: not waiting yet
        queue_name="default", status="READY", run_after=now + timedelta(hours=1), **fields
    )
    samples = scrape()
    assert samples[("portal_tasks_queued", (("queue", "default"),))] == 2
    assert samples[("portal_tasks_queued", (("queue", "bulk"),))] == 1
    assert 300 <= samples[("portal_tasks_oldest_age_seconds", (("queue", "default"),))] < 400
    assert 30 <= samples[("portal_tasks_oldest_age_seconds", (("queue", "bulk"),))] < 130


def test_the_trunks_side_records_through_one_function_each(metrics_token, db):
    before = scrape()
    metrics.upstream_call_observe(endpoint="/sip-trunks/", outcome="server_error", seconds=0.3)
    metrics.limiter_wait_observe(tenant="alpha", seconds=0.2)
    metrics.limiter_refusal_count(tenant="alpha", reason="budget")
    after = scrape()
    key = (
        "portal_crazytel_requests_total",
        (("endpoint", "/sip-trunks/"), ("outcome", "server_error")),
    )
    assert after[key] - before.get(key, 0) == 1
    key = ("portal_ratelimit_refusals_total", (("reason", "budget"), ("tenant", "alpha")))
    assert after[key] - before.get(key, 0) == 1
    with pytest.raises(ValueError):
        metrics.upstream_call_observe(endpoint="/x/", outcome="fine", seconds=1)
    with pytest.raises(ValueError):
        metrics.limiter_refusal_count(tenant="alpha", reason="tired")
    assert [metrics.upstream_outcome_for_status(s) for s in (201, 422, 429, 503)] == [
        "ok",
        "rejected",
        "rate_limited",
        "server_error",
    ]


INCREMENT = """
import sys
from portal import metrics
for _ in range(int(sys.argv[1])):
    metrics.HTTP_REQUESTS.labels(route="login", method="GET", status="200").inc()
"""


def test_several_processes_are_summed_in_multiprocess_mode(tmp_path, monkeypatch, tenant_a):
    """What several gunicorn workers do: each process writes its own files; one scrape sums them."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    root = str(django_settings.BASE_DIR)
    for count in (2, 5):
        subprocess.run(
            [sys.executable, "-c", INCREMENT, str(count)], env=env, cwd=root, check=True, timeout=60
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = metrics.scrape_registry()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text.collect()
        for s in family.samples
    }
    key = ("portal_http_requests_total", (("method", "GET"), ("route", "login"), ("status", "200")))
    assert samples[key] == 7
    # Figures read from the database are read at scrape time, not summed per process.
    assert samples[("portal_audit_unknown_open", (("tenant", "alpha"),))] == 0


def _defined_names() -> set[str]:
    names = set()
    for family in metrics.scrape_registry().collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    names.add("portal_audit_unknown_open")
    # Defined whether or not this process has counted anything yet (run alone, it had not).
    counters = (
        metrics.HTTP_REQUESTS,
        metrics.UPSTREAM_CALLS,
        metrics.LIMITER_WAITS,
        metrics.LIMITER_REFUSALS,
    )
    for counter in counters:
        names.add(counter._name + "_total")
    for histogram in (metrics.UPSTREAM_LATENCY, metrics.LIMITER_WAIT_SECONDS, metrics.HTTP_LATENCY):
        names.update(histogram._name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_the_alert_rules_use_only_metrics_the_portal_defines(db):
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    alerts = {rule["alert"] for rule in rules}
    assert {"CrazytelUpstreamFailing", "UnknownOutcomesPilingUp", "RateLimiterSaturated"} <= alerts
    defined = _defined_names()
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}
        used = set(re.findall(r"\bportal_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= defined, f"{rule['alert']} uses undefined {used - defined}"


def test_a_request_is_counted_in_the_series_labels_names():
    series = metrics.HTTP_REQUESTS.labels(route="bench-probe", method="GET", status="204")
    latency = metrics.HTTP_LATENCY.labels(route="bench-probe", method="GET")
    before, before_sum = series._value.get(), latency._sum.get()
    for _ in range(2):
        metrics.http_request_observe(route="bench-probe", method="GET", status=204, seconds=0.5)
    assert series._value.get() - before == 2
    assert latency._sum.get() - before_sum == 1.0
