"""The Done-when session of issue 18: gunicorn with three workers on PostgreSQL and Redis, a person
logs in, creates a trunk against the built-in sandbox, then meets an upstream failure (the
sandbox's fault injection). The JSON log lines tell that story with one request id from the
request line to the Crazytel call, and /metrics (with the token; 404 without) moved by exactly
what the log says happened."""

import json
import os
import re
from collections import Counter

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connections
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import DEFAULT_PASSWORD, TenantFactory, UserFactory, tenant_key_set
from tests.ops.test_stack import gunicorn_running, log_lines, log_size
from tests.processes import other_backends_end
from tests.tasks.conftest import _postgres_url
from tests.trunk_fixtures import token_from
from trunks.sandbox.services import sandbox_account_ensure, sandbox_faults_set

KEY = "ctk_session_test_key_0123456789abcd"

ON_POSTGRES_AND_REDIS = settings.DATABASES["default"]["ENGINE"].endswith(
    "postgresql"
) and os.environ.get("CACHE_URL", "").startswith("redis://")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not ON_POSTGRES_AND_REDIS,
        reason="The service session runs on PostgreSQL + Redis (DATABASE_URL=postgres://…, "
        "CACHE_URL=redis://…), as CI does: three gunicorn workers share the database.",
    ),
]


def _samples(g) -> Counter:
    response = requests.get(
        f"{g.base}/metrics", headers={"Authorization": f"Bearer {g.token}"}, timeout=30
    )
    assert response.status_code == 200
    counts = Counter()
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name in ("portal_http_requests_total", "portal_crazytel_requests_total"):
                counts[(s.name, tuple(sorted(s.labels.items())))] += s.value
    return counts


@pytest.fixture
def served(transactional_db, tmp_path):
    env = {
        "DATABASE_URL": _postgres_url(connections["default"].settings_dict),
        "CACHE_URL": os.environ["CACHE_URL"],
        "SECRET_KEY": settings.SECRET_KEY,
        "CREDENTIALS_ENCRYPTION_KEYS": ",".join(settings.CREDENTIALS_ENCRYPTION_KEYS),
        "SANDBOX_ENABLED": "true",
        "SANDBOX_ALLOW_WITHOUT_DEBUG": "true",  # the sandbox stands in for Crazytel here
        # ... over http on loopback, which the upstream allow-list refuses without DEBUG otherwise.
        "CRAZYTEL_UPSTREAM_HOSTS": "127.0.0.1,localhost",
        "CRAZYTEL_UPSTREAM_HTTP_ALLOWED": "true",
        "SECOND_FACTOR_REQUIRED": "false",
        # Plain HTTP on loopback (TLS ends at a proxy in production): cookies without Secure.
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        # The portal calls the sandbox in its own gunicorn: with one thread a worker whose
        # keep-alive connection (or whose accept loop) takes its own call waits for itself until
        # the Crazytel timeout (seen: the numbers call 20 s "unknown", the sandbox answering it
        # from the same process 8 ms later). A second thread serves it.
        "GUNICORN_THREADS": "2",
    }
    with gunicorn_running(tmp_path, **env) as g:
        yield g
    other_backends_end()


def test_a_scripted_session_is_told_by_the_logs_and_the_metrics(served):
    g = served
    account = sandbox_account_ensure(name="Session", api_key=KEY)
    tenant = TenantFactory(name="Session Co", slug="session-co")
    tenant_key_set(tenant, KEY, base_url=f"{g.base}/sandbox/api/v1")
    person = UserFactory(username="sam", member_of=tenant)
    # The server checks with Django's default hashers, not the tests' fast one.
    person.password = PBKDF2PasswordHasher().encode(DEFAULT_PASSWORD, PBKDF2PasswordHasher().salt())
    person.save(update_fields=["password"])
    landline = next(n["number"] for n in account.verified_numbers if n["number"].startswith("612"))
    mobile = next(n["number"] for n in account.verified_numbers if n["number"].startswith("614"))
    form = {
        "tenant": tenant.slug,
        "caller_id_number": landline,
        "sms_sender": mobile,
        "password": "Session-Trunk-Pw-7391",
        "description": "Scripted session",
        "area_code": "02",
        "enabled": "on",
    }
    assert requests.get(f"{g.base}/metrics", timeout=30).status_code == 404
    before = _samples(g)
    start = log_size(g)

    browser = requests.Session()
    browser.get(f"{g.base}/accounts/login/", timeout=60)
    login = browser.post(
        f"{g.base}/accounts/login/",
        data={
            "username": "sam",
            "password": DEFAULT_PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=60,
    )
    assert login.status_code == 302, login.text[:2000]
    page = browser.get(f"{g.base}/trunks/new/", timeout=60)
    assert page.status_code == 200
    csrf = {"csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    created = browser.post(
        f"{g.base}/trunks/new/",
        data={**form, **csrf, "submission_token": token_from(page.text)},
        timeout=60,
    )
    assert re.search(r"CT\d{6}", created.text), re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", " ", created.text)
    )[600:2600] or re.findall(r'(?:class="[^"]*error[^"]*"[^>]*>)\s*([^<]+)', created.text)

    page = browser.get(f"{g.base}/trunks/new/", timeout=60)
    sandbox_faults_set(account=account, forced_status=503, fault_remaining=1)
    failed = browser.post(
        f"{g.base}/trunks/new/",
        data={**form, **csrf, "submission_token": token_from(page.text), "description": "Again"},
        timeout=60,
    )
    assert failed.status_code < 500

    after = _samples(g)
    lines = log_lines(g, start)
    requests_logged = [o for o in lines if o["logger"] == "portal.request"]
    upstream_logged = [o for o in lines if o["logger"] == "trunks.crazytel.client"]

    # Request lines: route, status, user, tenant, request id — the id the response carried.
    posts = [o for o in requests_logged if o["route"] == "trunks:create" and o["method"] == "POST"]
    assert [o["request_id"] for o in posts] == [
        created.headers["X-Request-ID"],
        failed.headers["X-Request-ID"],
    ]
    assert all(o["user_id"] == person.pk and o["tenant"] == "session-co" for o in posts)
    assert {o["process"] for o in requests_logged} - {g.pid}, "workers served"
    # Upstream lines: the create calls carry the id of the request that made them.
    creates = [o for o in upstream_logged if o["endpoint"] == "/sip-trunks/"]
    assert [(o["request_id"], o["outcome"]) for o in creates] == [
        (created.headers["X-Request-ID"], "ok"),
        (failed.headers["X-Request-ID"], "server_error"),
    ]
    assert creates[0]["status"] in (200, 201) and creates[1]["status"] == 503
    assert all(o["duration_ms"] >= 0 for o in creates)
    assert "Session-Trunk-Pw-7391" not in "".join(json.dumps(o) for o in lines)

    # The metrics moved by exactly what the log lines say happened, and nothing else.
    moved = +(after - before)
    expected = Counter()
    for o in requests_logged:
        labels = (("method", o["method"]), ("route", o["route"]), ("status", str(o["status"])))
        expected[("portal_http_requests_total", labels)] += 1
    for o in upstream_logged:
        labels = (("endpoint", o["endpoint"]), ("outcome", o["outcome"]))
        expected[("portal_crazytel_requests_total", labels)] += 1
    # The first scrape is counted once answered, so it shows in the second: leave /metrics out.
    metrics_key = (
        "portal_http_requests_total",
        (("method", "GET"), ("route", "metrics"), ("status", "200")),
    )
    moved.pop(metrics_key, None)
    expected.pop(metrics_key, None)
    assert moved == expected
    assert (
        moved[("portal_crazytel_requests_total", (("endpoint", "/sip-trunks/"), ("outcome", "ok")))]
        == 1
    )
    assert (
        moved[
            (
                "portal_crazytel_requests_total",
                (("endpoint", "/sip-trunks/"), ("outcome", "server_error")),
            )
        ]
        == 1
    )
