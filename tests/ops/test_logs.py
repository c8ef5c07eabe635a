"""Structured logs: one JSON object per line, a line per request with its fields, one request id
shared by the response header, the log, the audit record and code that never sees the request."""

import html
import json
import os
import subprocess
import sys

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from portal.logs import current_request_id, logging_config
from portal.middleware import RequestIdMiddleware
from tests.trunk_fixtures import API_KEY_A, CANARY, TRUNKS_URL, VALID, created, token_from
from trunks.models import AuditKind, AuditRecord, PasswordChangeRequired

URL = "/trunks/new/"


def test_a_request_logs_one_json_line_with_its_fields(json_log, alice):
    client = Client()
    client.force_login(alice)
    json_log.lines.clear()
    response = client.get(URL)
    [line] = [r for r in json_log.requests() if r["path"] == URL]
    assert line["method"] == "GET"
    assert line["route"] == "trunks:create"
    assert line["tenant"] == "alpha"
    assert line["status"] == response.status_code == 200
    assert line["user_id"] == alice.pk
    assert line["request_id"] == response["X-Request-ID"]
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")
    # Every line the request produced is a JSON object carrying the same id.
    assert all(o["request_id"] == response["X-Request-ID"] for o in json_log.objects())


def test_an_unknown_url_is_logged_with_a_bounded_route_name(json_log, db):
    response = Client().get("/no/such/page/123")
    [line] = json_log.requests()
    assert (line["route"], line["status"], line["user_id"]) == ("unmatched", 404, None)
    assert response.status_code == 404


def test_a_request_a_middleware_answers_is_logged_under_the_page_it_asked_for(json_log, alice):
    """Sent to set a password before any view ran: named for the page, not counted as unknown."""
    PasswordChangeRequired.objects.create(user=alice)
    client = Client()
    client.force_login(alice)
    json_log.lines.clear()
    response = client.get(URL)
    assert response.status_code == 302
    [line] = [r for r in json_log.requests() if r["path"] == URL]
    assert (line["route"], line["status"]) == ("trunks:create", 302)


def test_a_view_names_the_tenant_through_request_log_tenant(json_log, tenant_a, rf: RequestFactory):
    seen = {}

    def view(request):
        request.log_tenant = tenant_a
        seen["inside"] = current_request_id()
        return HttpResponse("ok")

    request = rf.get("/somewhere")
    response = RequestIdMiddleware(view)(request)
    [line] = json_log.requests()
    assert line["tenant"] == "alpha"
    # Code below the view reads the same id through the context variable; after it, nothing.
    assert seen["inside"] == request.request_id == response["X-Request-ID"] == line["request_id"]
    assert current_request_id() == ""


def test_a_failing_view_is_logged_as_an_error_with_status_500(json_log, db):
    def view(request):
        raise RuntimeError("boom")

    from django.core.handlers.exception import convert_exception_to_response

    request = RequestFactory().get("/explodes")
    response = RequestIdMiddleware(convert_exception_to_response(view))(request)
    [line] = json_log.requests()
    assert (line["status"], line["level"]) == (500, "ERROR")
    assert response["X-Request-ID"] == line["request_id"]


def test_the_audit_record_keeps_the_request_id_of_the_response(json_log, keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, json=created("CT123456"))
    client = Client()
    client.force_login(alice)
    token = token_from(client.get(URL).content.decode())
    response = client.post(URL, {**VALID, "submission_token": token})
    record = AuditRecord.objects.get(kind=AuditKind.TRUNK_CREATE)
    assert record.request_id == response["X-Request-ID"]
    [line] = [r for r in json_log.requests() if r["method"] == "POST"]
    assert line["request_id"] == record.request_id
    assert line["tenant"] == "alpha"
    # The call to Crazytel: its own line, the same id, the one Crazytel received.
    [upstream] = [o for o in json_log.objects() if o.get("endpoint") == "/sip-trunks/"]
    assert upstream["request_id"] == record.request_id
    assert (upstream["status"], upstream["outcome"]) == (200, "ok")
    assert crazytel.calls[-1].request.headers["X-Request-ID"] == record.request_id


def test_the_audit_log_filtered_by_tenant_names_it(json_log, mallory, tenant_a):
    client = Client()
    client.force_login(mallory)
    client.get("/audit/", {"tenant": tenant_a.pk})
    client.get("/audit/")
    lines = [r for r in json_log.requests() if r["route"] == "audit:list"]
    assert [line["tenant"] for line in lines] == ["alpha", ""]


SCENARIOS = {
    "success": dict(json=created("CT123456")),
    "500-echo": dict(status=500, json={"detail": f"Could not create trunk with {CANARY}"}),
    "exception": dict(body=RuntimeError("the HTTP adapter exploded")),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_secret_in_any_json_line(scenario, json_log, keyed_a, alice, crazytel):
    """The secrets canary, on the production format: every line at DEBUG, tracebacks included."""
    crazytel.post(TRUNKS_URL, **SCENARIOS[scenario])
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    token = token_from(client.get(URL).content.decode())
    response = client.post(URL, {**VALID, "submission_token": token})
    if scenario == "success":
        assert html.unescape(response.content.decode()).count(CANARY) == 1
    assert json_log.requests(), "request lines were captured"
    text = "\n".join(json_log.lines)
    for line in json_log.lines:
        json.loads(line)
    assert CANARY not in text
    assert API_KEY_A not in text


def test_console_format_for_development_json_otherwise():
    assert logging_config(log_format="json", level="INFO")["handlers"]["console"]["formatter"] == (
        "json"
    )
    config = logging_config(log_format="console", level="DEBUG")
    assert config["handlers"]["console"]["formatter"] == "console"
    assert "%(request_id)" in config["formatters"]["console"]["format"]


def _settings_in_subprocess(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.LOG_FORMAT)"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "SECRET_KEY": "x" * 50,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_log_format_defaults_to_json_without_debug_and_refuses_nonsense():
    assert _settings_in_subprocess(DEBUG="false").stdout.strip() == "json"
    assert _settings_in_subprocess(DEBUG="true").stdout.strip() == "console"
    refused = _settings_in_subprocess(DEBUG="false", LOG_FORMAT="xml")
    assert refused.returncode != 0
    assert "LOG_FORMAT must be one of" in refused.stderr
