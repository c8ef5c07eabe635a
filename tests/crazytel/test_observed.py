"""Every call to Crazytel, and every refusal before one, is one structured log line and counted in
the metrics: endpoint as a path template, status, duration, outcome, the request id it carried."""

import logging

import pytest
import requests
import responses
from prometheus_client import REGISTRY

from portal.logs import request_id_bind, request_id_reset
from trunks.crazytel.client import CrazytelClient, endpoint_template
from trunks.crazytel.errors import OutcomeUnknown, RateLimited, Unreachable, UpstreamError
from trunks.crazytel.ratelimit import Decision, RateLimiter

BASE = "https://crazytel.test/api/v1"
KEY = "ctk_live_9f8e7d6c5b4a39281706"


def calls(endpoint: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "portal_crazytel_requests_total", {"endpoint": endpoint, "outcome": outcome}
    )
    return value or 0.0


def upstream_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "endpoint", None)]


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def client():
    return CrazytelClient(base_url=BASE, api_key=KEY, connect_timeout=2, read_timeout=3)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/sip-trunks/", "/sip-trunks/"),
        ("/sip-trunks/3f2b8c1e-0d5a-4e7b-9c61-2a4d8e9f0b13", "/sip-trunks/{id}"),
        ("/sip-trunks/12345/", "/sip-trunks/{id}/"),
        ("/account/verified-cli/?page=2", "/account/verified-cli/"),
    ],
)
def test_the_endpoint_is_the_path_template_never_an_id(path, template):
    assert endpoint_template(path) == template


def test_a_call_is_logged_and_counted_with_the_requests_id(mocked, client, caplog):
    mocked.get(f"{BASE}/balance/", json={"account_code": "0000000", "balance": 1})
    before = calls("/balance/", "ok")
    token = request_id_bind("b" * 32)
    try:
        with caplog.at_level(logging.INFO, logger="trunks.crazytel.client"):
            client.balance()
    finally:
        request_id_reset(token)
    assert calls("/balance/", "ok") - before == 1
    (line,) = upstream_lines(caplog)
    assert (line.endpoint, line.status, line.outcome, line.request_id) == (
        "/balance/",
        200,
        "ok",
        "b" * 32,
    )
    assert line.duration_ms >= 0
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("reply", "outcome", "error"),
    [
        ({"status": 500, "json": {}}, "server_error", UpstreamError),
        ({"status": 429, "json": {}}, "rate_limited", RateLimited),
        ({"status": 403, "json": {"detail": "x"}}, "rejected", Exception),
        ({"body": requests.ReadTimeout("slow")}, "unknown", OutcomeUnknown),
    ],
)
def test_each_outcome_is_counted_by_its_kind(mocked, client, caplog, reply, outcome, error):
    mocked.post(f"{BASE}/sip-trunks/", **reply)
    before = calls("/sip-trunks/", outcome)
    with caplog.at_level(logging.INFO), pytest.raises(error):
        client.create_sip_trunk({"password": "Pw-never-logged-1"})
    assert calls("/sip-trunks/", outcome) - before == 1
    (line,) = upstream_lines(caplog)
    assert line.outcome == outcome and line.levelno == logging.WARNING
    assert "Pw-never-logged-1" not in caplog.text


def test_an_unreachable_read_counts_each_try(mocked, client, caplog):
    mocked.get(f"{BASE}/balance/", body=requests.ConnectTimeout("no"))
    before = calls("/balance/", "unreachable")
    with caplog.at_level(logging.INFO), pytest.raises(Unreachable):
        client.balance()
    assert calls("/balance/", "unreachable") - before == 2
    assert [r.status for r in upstream_lines(caplog)] == [None, None]


class _AlwaysRefused:
    def __init__(self, reason):
        self.reason = reason

    def take(self, key, *, capacity, window):
        return Decision(False, self.reason, 3600.0)


class _GrantsOnSecondTry:
    def __init__(self):
        self.tries = 0

    def take(self, key, *, capacity, window):
        self.tries += 1
        return Decision(self.tries > 1, "window", 0.001)


def _sample(name, labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("reason", "counted_as"),
    [("window", "budget"), ("blocked", "retry_after"), ("breaker", "breaker")],
)
def test_a_limiter_refusal_is_counted_for_its_tenant_and_not_sent(
    mocked, caplog, settings, reason, counted_as
):
    limiter = RateLimiter(api_key=KEY, backend=_AlwaysRefused(reason), max_wait=0, label="acme")
    client = CrazytelClient(base_url=BASE, api_key=KEY, rate_limiter=limiter)
    labels = {"tenant": "acme", "reason": counted_as}
    before = _sample("portal_ratelimit_refusals_total", labels)
    refused_before = calls("/balance/", "refused_locally")
    with caplog.at_level(logging.INFO), pytest.raises(RateLimited):
        client.balance()
    assert _sample("portal_ratelimit_refusals_total", labels) - before == 1
    assert calls("/balance/", "refused_locally") - refused_before == 1
    assert len(mocked.calls) == 0


def test_a_limiter_wait_is_observed_only_when_it_waited(settings):
    labels = {"tenant": "globex"}
    before = _sample("portal_ratelimit_waits_total", labels)
    observed = _sample("portal_ratelimit_wait_seconds_count", labels)
    RateLimiter(api_key=KEY, backend=_GrantsOnSecondTry(), max_wait=5, label="globex").acquire()
    assert _sample("portal_ratelimit_waits_total", labels) - before == 1
    assert _sample("portal_ratelimit_wait_seconds_count", labels) - observed == 1
    granted = _GrantsOnSecondTry()
    granted.tries = 1
    RateLimiter(api_key=KEY, backend=granted, max_wait=5, label="globex").acquire()
    assert _sample("portal_ratelimit_waits_total", labels) - before == 1


def test_the_tenants_client_names_its_limiter_by_the_tenant(db):
    from tests.factories import TenantFactory
    from trunks.tenants.upstream import crazytel_client_for

    tenant = TenantFactory(slug="acme", keyed=True)
    assert crazytel_client_for(tenant).rate_limiter.label == "acme"
