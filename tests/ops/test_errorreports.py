"""Error reports: a failure reaches Sentry (through a local transport here) without the trunk
password, the tenant's API key, the form body, local variables or the portal's own keys."""

import json

import pytest
import sentry_sdk
from django.conf import settings as django_settings
from django.test import Client
from sentry_sdk.transport import Transport

from portal.errorreports import FILTERED, scrub_event, sentry_init
from tests.trunk_fixtures import API_KEY_A, CANARY, TRUNKS_URL, VALID, token_from

URL = "/trunks/new/"


class Captured(Transport):
    """Sentry's transport, replaced: envelopes are kept in memory, nothing leaves the process."""

    events: list = []

    def capture_envelope(self, envelope):
        event = envelope.get_event()
        if event is not None:
            Captured.events.append(event)


@pytest.fixture
def sentry_events():
    Captured.events = []
    sentry_init(dsn="https://public@sentry.invalid/1", environment="test", transport=Captured)
    yield Captured.events
    sentry_sdk.get_client().close(timeout=0)
    sentry_sdk.get_global_scope().set_client(None)  # reporting off again for the rest of the run


def test_an_exception_is_reported_without_any_secret(sentry_events, keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, body=RuntimeError("the HTTP adapter exploded"))
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    token = token_from(client.get(URL).content.decode())
    response = client.post(URL, {**VALID, "submission_token": token})
    assert response.status_code == 500

    [event] = [e for e in sentry_events if e.get("exception")]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["request"]["data"] == FILTERED
    assert event["tags"]["request_id"] == response["X-Request-ID"]
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames and not any("vars" in frame for frame in frames)
    text = json.dumps(sentry_events, default=str)
    for secret in (CANARY, API_KEY_A, *django_settings.CREDENTIALS_ENCRYPTION_KEYS):
        assert secret not in text
    assert django_settings.SECRET_KEY not in text


def test_a_captured_message_with_secrets_in_its_extras_is_scrubbed(sentry_events, settings):
    settings.METRICS_TOKEN = "metrics-canary-token-123456"
    with sentry_sdk.new_scope() as scope:
        scope.set_extra("api_key", API_KEY_A)
        scope.set_extra("form", {"password": CANARY, "description": "Reception"})
        scope.set_extra("note", f"scraped with {settings.METRICS_TOKEN}")
        sentry_sdk.capture_message("something odd")
    [event] = sentry_events
    assert event["extra"]["api_key"] == FILTERED
    assert event["extra"]["form"] == {"password": FILTERED, "description": "Reception"}
    assert event["extra"]["note"] == f"scraped with {FILTERED}"


def test_scrub_event_on_a_hand_made_event(settings):
    key = settings.CREDENTIALS_ENCRYPTION_KEYS[0]
    event = {
        "request": {
            "data": {"password": CANARY, "api_key": API_KEY_A},
            "cookies": {"sessionid": "abc"},
            "headers": {"X-Api-Key": API_KEY_A, "Authorization": "Bearer x", "Accept": "text/html"},
            "query_string": "next=/trunks/&token=abc123&q=CT123",
        },
        "exception": {
            "values": [{"stacktrace": {"frames": [{"function": "f", "vars": {"pw": CANARY}}]}}]
        },
        "breadcrumbs": {"values": [{"message": f"loaded key {key}", "data": {"secret": 1}}]},
    }
    scrubbed = scrub_event(event, {})
    text = json.dumps(scrubbed)
    assert CANARY not in text and API_KEY_A not in text and key not in text
    assert scrubbed["request"]["data"] == FILTERED
    assert "cookies" not in scrubbed["request"]
    assert scrubbed["request"]["headers"]["Accept"] == "text/html"
    assert scrubbed["request"]["headers"]["Authorization"] == FILTERED
    assert scrubbed["request"]["query_string"] == f"next=/trunks/&token={FILTERED}&q=CT123"
    assert scrubbed["breadcrumbs"]["values"][0]["data"]["secret"] == FILTERED


def test_without_a_dsn_nothing_is_set_up(settings):
    assert settings.SENTRY_DSN == ""
    assert not sentry_sdk.get_client().is_active()
