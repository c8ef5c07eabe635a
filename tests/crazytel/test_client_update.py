"""CrazytelClient.update_sip_trunk: PATCH /sip-trunks/{id} with only the changes, every answer the
contract allows read tolerantly, a 404 told apart from a wrong base URL, never retried."""

import json

import pytest
import requests
import responses

from trunks.crazytel.client import CrazytelClient
from trunks.crazytel.errors import (
    OutcomeUnknown,
    RateLimited,
    TrunkNotFound,
    UpstreamError,
    ValidationFailed,
)

BASE = "https://crazytel.test/api/v1"
KEY = "ctk_live_update_0001"
TRUNK_ID = "3f2b8c1e-0d5a-4e7b-9c61-2a4d8e9f0b13"
URL = f"{BASE}/sip-trunks/{TRUNK_ID}"
PASSWORD = "Upd4tedSecretPw"


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def client():
    return CrazytelClient(base_url=BASE, api_key=KEY, connect_timeout=2, read_timeout=3)


def test_it_sends_only_the_changes_with_the_key_in_the_header(mocked, client):
    mocked.patch(URL, json={"id": TRUNK_ID, "username": "CT123456", "enabled": False})
    updated = client.update_sip_trunk(TRUNK_ID, {"enabled": False})
    (call,) = mocked.calls
    assert call.request.method == "PATCH" and call.request.url == URL
    assert json.loads(call.request.body) == {"enabled": False}
    assert call.request.headers["x-crazytel-api-key"] == KEY
    assert updated.settings == {"enabled": False}


@pytest.mark.parametrize(("status", "body"), [(204, ""), (200, "")])
def test_an_empty_answer_means_the_sent_values_applied(mocked, client, status, body):
    mocked.patch(URL, status=status, body=body)
    assert client.update_sip_trunk(TRUNK_ID, {"description": "x"}).settings is None


def test_a_wrapped_trunk_is_read_and_numbers_normalised_and_passwords_dropped(mocked, client):
    mocked.patch(
        URL,
        json={
            "data": {
                "caller_id_number": "+61 2 9876 5432",
                "password": PASSWORD,
                "sms_sender": None,
            }
        },
    )
    updated = client.update_sip_trunk(TRUNK_ID, {"password": PASSWORD})
    assert updated.settings == {"caller_id_number": "61298765432", "sms_sender": ""}
    assert PASSWORD not in json.dumps(updated.response)


def test_a_json_404_is_a_missing_trunk_and_an_html_404_a_wrong_url(mocked, client):
    mocked.patch(URL, status=404, json={"detail": "SIP trunk not found"})
    with pytest.raises(TrunkNotFound):
        client.update_sip_trunk(TRUNK_ID, {"enabled": True})
    mocked.replace(
        responses.PATCH, URL, status=404, body="<html>nginx</html>", content_type="text/html"
    )
    with pytest.raises(UpstreamError) as caught:
        client.update_sip_trunk(TRUNK_ID, {"enabled": True})
    assert not isinstance(caught.value, TrunkNotFound)


def test_a_timeout_after_sending_is_never_retried(mocked, client):
    mocked.patch(URL, body=requests.ReadTimeout("late"))
    with pytest.raises(OutcomeUnknown):
        client.update_sip_trunk(TRUNK_ID, {"enabled": True})
    assert len(mocked.calls) == 1


def test_errors_as_for_create(mocked, client):
    mocked.patch(
        URL,
        status=422,
        json={"detail": [{"loc": ["body", "password"], "msg": "weak", "type": "v"}]},
    )
    with pytest.raises(ValidationFailed) as caught:
        client.update_sip_trunk(TRUNK_ID, {"password": "weakweak"})
    assert "password" in caught.value.field_errors
    mocked.replace(
        responses.PATCH, URL, status=429, json={"detail": "slow"}, headers={"Retry-After": "5"}
    )
    with pytest.raises(RateLimited) as limited:
        client.update_sip_trunk(TRUNK_ID, {"enabled": True})
    assert limited.value.retry_after == 5


def test_a_malformed_or_list_answer_is_an_upstream_error(mocked, client):
    mocked.patch(URL, body='{"enabled": fal', content_type="application/json")
    with pytest.raises(UpstreamError):
        client.update_sip_trunk(TRUNK_ID, {"enabled": False})
    mocked.replace(responses.PATCH, URL, json=["ok"])
    with pytest.raises(UpstreamError):
        client.update_sip_trunk(TRUNK_ID, {"enabled": False})
