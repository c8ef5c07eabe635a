"""The Crazytel client against `responses`-mocked replies: every tolerated shape, every error class."""

import http.client
import json
import logging
import pickle
import sys
from decimal import Decimal

import pytest
import requests
import responses
from django.views.debug import ExceptionReporter
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
)

import portal
from portal.logs import request_id_bind, request_id_reset
from trunks.crazytel.client import CrazytelClient
from trunks.crazytel.errors import (
    CrazytelError,
    NumberRejected,
    OutcomeUnknown,
    RateLimited,
    RejectedKey,
    Unreachable,
    UpstreamError,
    ValidationFailed,
)
from trunks.crazytel.parsing import (
    NUMBER_KEYS,
    Balance,
    CreatedTrunk,
    VerifiedNumber,
    parse_retry_after,
)
from trunks.tenants.credentials import api_key_encrypt
from trunks.tenants.upstream import crazytel_client_for

BASE = "https://crazytel.test/api/v1"
KEY = "ctk_live_9f8e7d6c5b4a39281706"
PASSWORD = "Sup3rSecretTrunkPw"
NUMBERS_URL = f"{BASE}/account/verified-cli/"
TRUNKS_URL = f"{BASE}/sip-trunks/"
BALANCE_URL = f"{BASE}/balance/"
PAYLOAD = {
    "password": PASSWORD,
    "caller_id_number": "61298765432",
    "sms_sender": "61412345678",
    "description": "Front desk",
    "area_code": "02",
    "enabled": True,
    "hide_caller_id": False,
    "softphone_show_balance": True,
    "softphone_sync_sms": False,
}
TRUNK_ID = "3f2b8c1e-0d5a-4e7b-9c61-2a4d8e9f0b13"


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def client():
    return CrazytelClient(base_url=BASE, api_key=KEY, connect_timeout=2, read_timeout=3)


def refused(url=BASE):
    return requests.ConnectionError(
        MaxRetryError(None, url, NewConnectionError(None, "Connection refused"))
    )


def reset_after_sending():
    return requests.ConnectionError(
        ProtocolError(
            "Connection aborted.",
            http.client.RemoteDisconnected("Remote end closed connection without response"),
        )
    )


class FakeLimiter:
    """The rate limiter protocol (trunks.crazytel.client.RateLimiter), recording what the client tells it."""

    def __init__(self, refuse=False):
        self.calls = []
        self.writes = []
        self.refuse = refuse

    def acquire(self, *, write=False):
        self.calls.append(("acquire",))
        self.writes.append(write)
        if self.refuse:
            raise RateLimited(retry_after=7.0)

    def note_retry_after(self, seconds):
        self.calls.append(("retry_after", seconds))

    def note_result(self, *, server_error):
        self.calls.append(("result", server_error))


# --- Verified numbers ---------------------------------------------------------------------------


def test_it_reads_a_plain_list_of_strings_and_normalises_them(mocked, client):
    mocked.get(NUMBERS_URL, json=["61298765432", "+61 412-345-678", " 61 3 9123 4567 "])
    assert client.verified_numbers() == [
        VerifiedNumber("61298765432"),
        VerifiedNumber("61412345678"),
        VerifiedNumber("61391234567"),
    ]


@pytest.mark.parametrize("key", NUMBER_KEYS)
def test_it_reads_objects_under_every_listed_number_key_and_keeps_the_label(mocked, client, key):
    mocked.get(
        NUMBERS_URL,
        json=[
            {key: "+61298765432", "label": "Sydney office", "verified": True},
            {key: "61412345678", "description": "Ops mobile"},
            {key: "61733334444"},
        ],
    )
    assert client.verified_numbers() == [
        VerifiedNumber("61298765432", "Sydney office"),
        VerifiedNumber("61412345678", "Ops mobile"),
        VerifiedNumber("61733334444", ""),
    ]


@pytest.mark.parametrize(
    "wrapper", ["results", "data", "items", "numbers", "verified_cli", "verified_numbers"]
)
def test_it_unwraps_a_list_under_every_listed_key(mocked, client, wrapper):
    mocked.get(NUMBERS_URL, json={wrapper: [{"cli": "61298765432", "name": "Main"}], "count": 1})
    assert client.verified_numbers() == [VerifiedNumber("61298765432", "Main")]


def test_it_unwraps_a_nested_wrapper_and_numbers_given_as_integers(mocked, client):
    mocked.get(NUMBERS_URL, json={"data": {"items": [61298765432, {"did": 61412345678}]}})
    assert [n.number for n in client.verified_numbers()] == ["61298765432", "61412345678"]


def test_it_drops_duplicate_numbers_keeping_the_first_label(mocked, client):
    mocked.get(
        NUMBERS_URL,
        json=[{"number": "61298765432", "label": "A"}, {"number": "+61 2 9876 5432", "label": "B"}],
    )
    assert client.verified_numbers() == [VerifiedNumber("61298765432", "A")]


def test_an_empty_list_is_an_account_without_numbers(mocked, client):
    mocked.get(NUMBERS_URL, json={"results": []})
    assert client.verified_numbers() == []


@pytest.mark.parametrize(
    "body",
    [
        {"count": 2},
        "61298765432",
        [None],
        [{"label": "no number here"}],
        ["not a number"],
        [["61298765432"]],
        [True],
    ],
)
def test_an_unknown_numbers_shape_is_an_upstream_error_with_a_clear_message(mocked, client, body):
    mocked.get(NUMBERS_URL, json=body)
    with pytest.raises(UpstreamError) as info:
        client.verified_numbers()
    assert "verified numbers" in info.value.message
    assert info.value.category == "upstream"


# --- Create -------------------------------------------------------------------------------------


def test_it_creates_a_trunk_sending_exactly_the_payload_with_the_key_in_the_header(mocked, client):
    mocked.post(
        TRUNKS_URL,
        json={"id": TRUNK_ID, "username": "CT123456", "enabled": True, "password": PASSWORD},
    )
    trunk = client.create_sip_trunk(PAYLOAD)
    assert trunk == CreatedTrunk(
        username="CT123456",
        trunk_id=TRUNK_ID,
        response={"id": TRUNK_ID, "username": "CT123456", "enabled": True},
    )
    sent = mocked.calls[0].request
    assert json.loads(sent.body) == PAYLOAD
    assert sent.headers["x-crazytel-api-key"] == KEY
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"] == f"crazytel-trunk-portal/{portal.__version__}"
    assert len(sent.headers["X-Request-ID"]) == 32
    assert KEY not in sent.url and KEY not in sent.body.decode()


def test_it_asks_for_an_uncompressed_answer_and_says_how_long_its_body_is(mocked, client):
    # The body is read raw (urllib3 decodes nothing), within the size cap, so it must not come
    # gzipped.
    mocked.post(TRUNKS_URL, json={"username": "CT123456"})
    client.create_sip_trunk(PAYLOAD)
    sent = mocked.calls[0].request
    assert sent.headers["Accept-Encoding"] == "identity"
    assert sent.headers["Content-Length"] == str(len(sent.body))


def test_it_sends_no_netrc_credentials(mocked, client, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine crazytel.test login someone password not-for-crazytel\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    mocked.post(TRUNKS_URL, json={"username": "CT123456"})
    client.create_sip_trunk(PAYLOAD)
    assert "Authorization" not in mocked.calls[0].request.headers


def test_a_host_beyond_ascii_is_sent_idna_encoded(mocked):
    mocked.get(
        "https://xn--crazytl-gya.test/api/v1/balance/", json={"account_code": "1", "balance": 1}
    )
    client = CrazytelClient(base_url="https://crazytél.test/api/v1", api_key=KEY)
    assert client.balance() == Balance(account_code="1", balance=Decimal(1))
    assert client.balance() == Balance(account_code="1", balance=Decimal(1))  # the URL remembered


def test_a_request_id_with_a_line_break_never_reaches_a_header(mocked, client):
    mocked.post(TRUNKS_URL, json={"username": "CT123456"})
    token = request_id_bind("a" * 32 + "\r\nX-Injected: 1")
    try:
        with pytest.raises(CrazytelError):
            client.create_sip_trunk(PAYLOAD)
    finally:
        request_id_reset(token)
    assert len(mocked.calls) == 0


def test_it_never_puts_an_api_key_in_the_body(mocked, client):
    mocked.post(TRUNKS_URL, json={"username": "CT123456"})
    client.create_sip_trunk({**PAYLOAD, "api_key": KEY})
    assert "api_key" not in json.loads(mocked.calls[0].request.body)


def test_outside_a_request_each_call_has_a_fresh_request_id(mocked, client):
    mocked.get(BALANCE_URL, json={"account_code": "0000000", "balance": 1})
    client.balance()
    client.balance()
    ids = {c.request.headers["X-Request-ID"] for c in mocked.calls}
    assert len(ids) == 2
    assert all(len(i) == 32 for i in ids)


def test_inside_a_request_every_call_sends_the_portal_requests_id(mocked, client):
    mocked.get(BALANCE_URL, json={"account_code": "0000000", "balance": 1})
    mocked.post(TRUNKS_URL, status=400, json={"detail": "no"})
    token = request_id_bind("a" * 32)
    try:
        client.balance()
        with pytest.raises(CrazytelError) as info:
            client.create_sip_trunk(PAYLOAD)
    finally:
        request_id_reset(token)
    assert [c.request.headers["X-Request-ID"] for c in mocked.calls] == ["a" * 32] * 2
    assert info.value.request_id == "a" * 32


def test_it_strips_password_like_keys_recursively_and_keeps_the_rest(mocked, client):
    mocked.post(
        TRUNKS_URL,
        json={
            "data": {
                "id": TRUNK_ID,
                "username": "CT000042",
                "sip_password": PASSWORD,
                "auth": {"secret": "x", "realm": "sip.crazytel.io"},
                "tokens": ["a"],
                "api_key": KEY,
                "sip_pass": "other",
                "echo": PASSWORD,
                "note": f"password was {PASSWORD}",
                "balance": 12.5,
                "limits": [{"channels": 2, "Access-Token": "t"}],
            }
        },
    )
    trunk = client.create_sip_trunk(PAYLOAD)
    assert trunk.username == "CT000042"
    assert trunk.trunk_id == TRUNK_ID
    assert trunk.response == {
        "data": {
            "id": TRUNK_ID,
            "username": "CT000042",
            "echo": "[redacted]",
            "note": "password was [redacted]",
            "balance": 12.5,
            "limits": [{"channels": 2}],
        }
    }
    json.dumps(trunk.response)  # storable in a JSONField


def test_a_create_without_an_id_still_succeeds(mocked, client):
    mocked.post(TRUNKS_URL, json={"username": "CT999999"})
    assert client.create_sip_trunk(PAYLOAD).trunk_id is None


@pytest.mark.parametrize(
    "body",
    [
        {"id": TRUNK_ID},
        {"username": "CT12345"},
        {"username": "ct123456"},
        {"username": "CT1234567"},
        {"username": "CT\u0661\u0662\u0663\u0664\u0665\u0666"},  # Arabic-Indic digits
        {"username": 123456},
        {"username": None},
        ["CT123456"],
        "CT123456",
    ],
)
def test_a_2xx_without_a_valid_username_is_an_upstream_error(mocked, client, body):
    mocked.post(TRUNKS_URL, json=body, status=201)
    with pytest.raises(UpstreamError) as info:
        client.create_sip_trunk(PAYLOAD)
    assert "check the Crazytel account" in info.value.message
    assert info.value.status == 201


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        ("{not json", "application/json", "could not read as JSON"),
        ("", "application/json", "empty body"),
        (
            "<html><head><title>Maintenance</title></head><body>Back soon</body></html>",
            "text/html",
            "HTML page (Maintenance)",
        ),
    ],
)
def test_a_2xx_with_a_malformed_body_is_an_upstream_error(
    mocked, client, body, content_type, words
):
    mocked.post(TRUNKS_URL, body=body, content_type=content_type)
    with pytest.raises(UpstreamError) as info:
        client.create_sip_trunk(PAYLOAD)
    assert words in info.value.message


def test_a_body_bigger_than_the_cap_is_an_upstream_error(mocked, client):
    mocked.get(BALANCE_URL, body="x" * (2 * 1024 * 1024))
    with pytest.raises(UpstreamError, match="larger than"):
        client.balance()


# --- Balance ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"account_code": "0000000", "balance": 2405.44}, Balance("0000000", Decimal("2405.44"))),
        ({"account_code": 1234567, "balance": "12.30"}, Balance("1234567", Decimal("12.30"))),
        ({"data": {"account_code": "A1", "balance": 0}}, Balance("A1", Decimal("0"))),
        ({"account_code": "A1", "balance": -5.5}, Balance("A1", Decimal("-5.5"))),
    ],
)
def test_it_reads_the_balance_exactly(mocked, client, body, expected):
    mocked.get(BALANCE_URL, json=body)
    assert client.balance() == expected


@pytest.mark.parametrize(
    "body",
    [
        {"balance": 1},
        {"account_code": "1"},
        {"account_code": "1", "balance": "lots"},
        {"account_code": "1", "balance": True},
        {"account_code": "1", "balance": "NaN"},
        [1, 2],
    ],
)
def test_a_balance_missing_its_parts_is_an_upstream_error(mocked, client, body):
    mocked.get(BALANCE_URL, json=body)
    with pytest.raises(UpstreamError, match="balance"):
        client.balance()


# --- Error statuses and bodies ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"detail": "Invalid API key"}},
        {"json": {"detail": "Not authenticated"}, "status": 403},
        {"body": "Unauthorized", "content_type": "text/plain"},
        {"body": ""},
    ],
)
def test_401_is_a_rejected_key(mocked, client, kwargs):
    mocked.get(BALANCE_URL, status=kwargs.pop("status", 401), **kwargs)
    with pytest.raises(RejectedKey) as info:
        client.balance()
    assert info.value.category == "rejected_key"
    assert info.value.status in (401, 403)
    assert "admin must check or replace it" in info.value.message


def test_422_fastapi_detail_maps_to_fields_and_never_echoes_the_input(mocked, client):
    mocked.post(
        TRUNKS_URL,
        status=422,
        json={
            "detail": [
                {
                    "type": "value_error",
                    "loc": ["body", "password"],
                    "msg": "Value error, Password must contain at least 1 uppercase letter",
                    "input": PASSWORD,
                },
                {
                    "type": "string_too_long",
                    "loc": ["body", "description"],
                    "msg": "String should have at most 255 characters",
                    "input": "x" * 300,
                },
                {"type": "missing", "loc": ["body"], "msg": "Field required"},
            ]
        },
    )
    with pytest.raises(ValidationFailed) as info:
        client.create_sip_trunk(PAYLOAD)
    error = info.value
    assert error.status == 422
    assert error.category == "validation"
    assert error.field_errors == {
        "password": ["Password must contain at least 1 uppercase letter"],
        "description": ["String should have at most 255 characters"],
        "__all__": ["Field required"],
    }
    assert "password: Password must contain" in error.message
    assert PASSWORD not in repr(error.__dict__)


def test_422_with_a_plain_detail_names_the_field_it_mentions(mocked, client):
    mocked.post(TRUNKS_URL, status=422, json={"detail": "password too weak"})
    with pytest.raises(ValidationFailed) as info:
        client.create_sip_trunk(PAYLOAD)
    assert info.value.field_errors == {"password": ["password too weak"]}


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"json": {"detail": "Caller ID number is not verified"}}, ["caller_id_number"]),
        ({"json": {"error": {"message": "SMS sender must start with 614"}}}, ["sms_sender"]),
        ({"json": {"message": "Invalid sms_sender: not verified"}}, ["sms_sender"]),
        (
            {"body": "caller_id_number not verified", "content_type": "text/plain"},
            ["caller_id_number"],
        ),
        (
            {"json": {"detail": [{"loc": ["body", "sms_sender"], "msg": "not verified"}]}},
            ["sms_sender"],
        ),
        ({"json": {"detail": "Number 61298765432 is not verified"}}, ["caller_id_number"]),
        ({"json": {"detail": "Number 614 1234 5678 is not verified"}}, ["sms_sender"]),
        ({"json": {"detail": "Bad request"}}, ["__all__"]),
    ],
)
def test_400_is_a_number_rejection_on_the_field_the_message_names(mocked, client, kwargs, fields):
    mocked.post(TRUNKS_URL, status=400, **kwargs)
    with pytest.raises(NumberRejected) as info:
        client.create_sip_trunk(PAYLOAD)
    assert sorted(info.value.field_errors) == sorted(fields)
    assert info.value.status == 400
    assert info.value.message


@pytest.mark.parametrize(
    ("header", "expected"),
    [("30", 30.0), ("0", 0.0), ("2.5", 2.5), (None, None), ("soon", None), ("-4", 0.0)],
)
def test_429_is_rate_limited_with_retry_after_when_sent(mocked, client, header, expected):
    headers = {"Retry-After": header} if header is not None else {}
    mocked.get(BALANCE_URL, status=429, json={"detail": "Too Many Requests"}, headers=headers)
    with pytest.raises(RateLimited) as info:
        client.balance()
    assert info.value.retry_after == expected
    assert info.value.status == 429
    assert "busy" in info.value.message
    assert len(mocked.calls) == 1


def test_retry_after_as_an_http_date_is_seconds_from_now():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 85 <= parse_retry_after(when) <= 90
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("99999999") == 3600.0


@pytest.mark.parametrize(
    ("status", "kwargs", "words"),
    [
        (
            500,
            {"json": {"detail": "Error communicating with the Crazytel API"}},
            "Error communicating",
        ),
        (
            502,
            {
                "body": "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>b{}</style>"
                "</head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>",
                "content_type": "text/html",
            },
            "HTML error page (Crazytel said: 502 Bad Gateway)",
        ),
        (503, {"body": "Service Unavailable", "content_type": "text/plain"}, "Service Unavailable"),
        (404, {"json": {"detail": "Not Found"}}, "check the tenant's base URL"),
        (405, {"json": {"detail": "Method Not Allowed"}}, "unexpected 405"),
        (
            400,
            {"body": "<html><title>400 Bad Request</title></html>", "content_type": "text/html"},
            "HTML page",
        ),
    ],
)
def test_server_failures_and_html_pages_are_upstream_errors(mocked, client, status, kwargs, words):
    mocked.post(TRUNKS_URL, status=status, **kwargs)
    with pytest.raises(UpstreamError) as info:
        client.create_sip_trunk(PAYLOAD)
    assert info.value.status == status
    assert words in info.value.message
    assert "<" not in info.value.message


def test_a_redirect_is_not_followed_so_the_key_never_travels_elsewhere(mocked, client):
    mocked.get(BALANCE_URL, status=307, headers={"Location": "https://evil.test/balance/"})
    mocked.get("https://evil.test/balance/", json={"account_code": "1", "balance": 1})
    with pytest.raises(UpstreamError, match="redirect"):
        client.balance()
    assert [c.request.url for c in mocked.calls] == [BALANCE_URL]


# --- Transport failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (refused(), Unreachable),
        (
            requests.ConnectionError(
                MaxRetryError(None, BASE, NameResolutionError("crazytel.test", None, "no"))
            ),
            Unreachable,
        ),
        (requests.ConnectTimeout("connect timed out"), Unreachable),
        (requests.exceptions.SSLError("bad handshake"), Unreachable),
        (requests.exceptions.ProxyError("proxy says no"), Unreachable),
        (requests.ReadTimeout("read timed out"), OutcomeUnknown),
        (requests.exceptions.ChunkedEncodingError("reset mid-body"), OutcomeUnknown),
        (reset_after_sending(), OutcomeUnknown),
        (requests.ConnectionError("something went wrong"), OutcomeUnknown),
    ],
)
def test_transport_failures_map_to_unreachable_or_unknown(mocked, client, exc, cls):
    mocked.post(TRUNKS_URL, body=exc)
    with pytest.raises(cls) as info:
        client.create_sip_trunk(PAYLOAD)
    assert info.value.status is None
    assert info.value.request_id
    # Never chained to the requests exception, whose request carries the key header.
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert len(mocked.calls) == 1


def test_a_create_is_never_retried_even_when_it_surely_did_not_arrive(mocked, client):
    mocked.post(TRUNKS_URL, body=refused())
    mocked.post(TRUNKS_URL, json={"username": "CT123456"})
    with pytest.raises(Unreachable, match="Nothing was sent"):
        client.create_sip_trunk(PAYLOAD)
    assert len(mocked.calls) == 1


def test_a_read_is_retried_once_when_unreachable(mocked, client):
    mocked.get(BALANCE_URL, body=refused())
    mocked.get(BALANCE_URL, json={"account_code": "1", "balance": 3})
    assert client.balance() == Balance("1", Decimal(3))
    assert len(mocked.calls) == 2


def test_a_read_gives_up_after_the_second_unreachable(mocked, client):
    mocked.get(NUMBERS_URL, body=refused())
    with pytest.raises(Unreachable):
        client.verified_numbers()
    assert len(mocked.calls) == 2


def test_a_read_is_not_retried_when_the_outcome_is_unknown(mocked, client):
    mocked.get(NUMBERS_URL, body=requests.ReadTimeout())
    with pytest.raises(OutcomeUnknown):
        client.verified_numbers()
    assert len(mocked.calls) == 1


def test_a_refused_port_over_real_sockets_is_unreachable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CrazytelClient(base_url=f"http://127.0.0.1:{port}/api/v1", api_key=KEY)
    with pytest.raises(Unreachable, match="refused"):
        client.create_sip_trunk(PAYLOAD)


@pytest.mark.parametrize("base_url", ["crazytel.io/api/v1", "ftp://crazytel.io/api", "http://"])
def test_a_bad_base_url_is_unreachable_not_a_crash(base_url):
    with pytest.raises(Unreachable, match="base URL"):
        CrazytelClient(base_url=base_url, api_key=KEY).balance()


@pytest.mark.parametrize("key", ["", "   ", "key\nInjected: 1", "ключ"])
def test_a_key_a_header_cannot_carry_is_rejected_before_sending(mocked, key):
    client = CrazytelClient(base_url=BASE, api_key=key)
    with pytest.raises(RejectedKey) as info:
        client.balance()
    assert len(mocked.calls) == 0
    assert key.strip() == "" or key not in str(info.value)


# --- Rate limiter hook --------------------------------------------------------------------------


def test_the_rate_limiter_is_asked_before_and_told_after_each_request(mocked):
    limiter = FakeLimiter()
    client = CrazytelClient(base_url=BASE, api_key=KEY, rate_limiter=limiter)
    mocked.get(BALANCE_URL, json={"account_code": "1", "balance": 1})
    mocked.post(TRUNKS_URL, status=429, headers={"Retry-After": "12"})
    mocked.get(NUMBERS_URL, status=500)
    client.balance()
    with pytest.raises(RateLimited):
        client.create_sip_trunk(PAYLOAD)
    with pytest.raises(UpstreamError):
        client.verified_numbers()
    assert limiter.calls == [
        ("acquire",),
        ("result", False),
        ("acquire",),
        ("retry_after", 12.0),
        ("result", False),
        ("acquire",),
        ("result", True),
    ]


def test_a_create_may_use_the_write_reserve_and_reads_may_not(mocked):
    limiter = FakeLimiter()
    client = CrazytelClient(base_url=BASE, api_key=KEY, rate_limiter=limiter)
    mocked.get(BALANCE_URL, json={"account_code": "1", "balance": 1})
    mocked.get(NUMBERS_URL, json=["61298765432"])
    mocked.post(TRUNKS_URL, json={"username": "CT123456"})
    client.balance()
    client.verified_numbers()
    client.create_sip_trunk(PAYLOAD)
    assert limiter.writes == [False, False, True]


def test_a_connection_failure_counts_as_a_server_error_for_the_breaker(mocked):
    limiter = FakeLimiter()
    client = CrazytelClient(base_url=BASE, api_key=KEY, rate_limiter=limiter)
    mocked.get(BALANCE_URL, body=refused())
    with pytest.raises(Unreachable):
        client.balance()
    assert limiter.calls == [("acquire",), ("result", True)] * 2


def test_when_the_limiter_refuses_nothing_is_sent(mocked):
    client = CrazytelClient(base_url=BASE, api_key=KEY, rate_limiter=FakeLimiter(refuse=True))
    with pytest.raises(RateLimited) as info:
        client.create_sip_trunk(PAYLOAD)
    assert info.value.retry_after == 7.0
    assert info.value.status is None  # Crazytel was not asked
    assert "7 seconds" in info.value.message
    assert len(mocked.calls) == 0


# --- The factory --------------------------------------------------------------------------------


def test_the_factory_decrypts_the_tenants_key_and_uses_the_settings(mocked, tenant_a, settings):
    settings.CRAZYTEL_CONNECT_TIMEOUT = 1.5
    settings.CRAZYTEL_TIMEOUT = 9.0
    tenant_a.base_url = "https://tenant.crazytel.test/api/v1/"
    tenant_a.api_key_ciphertext = api_key_encrypt(tenant_id=tenant_a.pk, plaintext=KEY)
    tenant_a.save()
    client = crazytel_client_for(tenant_a)
    assert (client.base_url, client.connect_timeout, client.read_timeout) == (
        "https://tenant.crazytel.test/api/v1",
        1.5,
        9.0,
    )
    mocked.get(
        "https://tenant.crazytel.test/api/v1/balance/", json={"account_code": "7", "balance": 0}
    )
    client.balance()
    assert mocked.calls[0].request.headers["x-crazytel-api-key"] == KEY


def test_the_factory_falls_back_to_the_global_base_url(tenant_a, settings):
    settings.CRAZYTEL_API_BASE_URL = "https://crazytel.io/api/v1"
    tenant_a.api_key_ciphertext = api_key_encrypt(tenant_id=tenant_a.pk, plaintext=KEY)
    assert crazytel_client_for(tenant_a).base_url == "https://crazytel.io/api/v1"


def test_the_factory_refuses_a_tenant_without_a_key(tenant_a):
    with pytest.raises(RejectedKey, match="no Crazytel API key"):
        crazytel_client_for(tenant_a)


# --- Secrets ------------------------------------------------------------------------------------


def _every_error(mocked, client):
    """Run the client through success and every failure; return the errors raised."""
    mocked.get(NUMBERS_URL, json=[{"number": "61298765432", "label": "x"}])
    mocked.post(TRUNKS_URL, json={"username": "CT123456", "password": PASSWORD, "key": KEY})
    mocked.get(BALANCE_URL, json={"account_code": "1", "balance": 1})
    client.verified_numbers()
    client.create_sip_trunk(PAYLOAD)
    client.balance()
    mocked.reset()
    errors = []
    replies = [
        {"status": 401, "json": {"detail": f"Key {KEY} is invalid"}},
        {
            "status": 422,
            "json": {
                "detail": [
                    {
                        "loc": ["body", "password"],
                        "msg": f"bad password {PASSWORD}",
                        "input": PASSWORD,
                    }
                ]
            },
        },
        {"status": 400, "json": {"detail": f"caller id bad; you sent {PASSWORD}"}},
        {"status": 429, "body": f"slow down {KEY}"},
        {"status": 500, "body": f"<html><title>oops {KEY}</title></html>"},
        {"status": 200, "body": f"not json {PASSWORD}"},
        {"status": 200, "json": {"username": PASSWORD}},
        {"body": reset_after_sending()},
        {"body": requests.ReadTimeout(f"read timeout {KEY}")},
        {"body": refused()},
    ]
    for reply in replies:
        mocked.reset()
        mocked.post(TRUNKS_URL, **reply)
        with pytest.raises(CrazytelError) as info:
            client.create_sip_trunk(PAYLOAD)
        errors.append(info.value)
    return errors


def test_no_secret_in_any_log_record_or_error_through_success_and_failure(mocked, client, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    errors = _every_error(mocked, client)
    assert len(errors) == 10
    assert {type(e) for e in errors} >= {
        RejectedKey,
        ValidationFailed,
        NumberRejected,
        RateLimited,
        UpstreamError,
        OutcomeUnknown,
        Unreachable,
    }
    records = caplog.records
    assert any("POST /sip-trunks/ -> 200" in r.getMessage() for r in records)
    assert all(len(r.request_id) == 32 for r in records if hasattr(r, "endpoint"))
    for record in records:
        text = f"{record.getMessage()} {record.args!r} {record.__dict__!r}"
        assert KEY not in text and PASSWORD not in text
    for error in errors:
        for text in (str(error), repr(error), repr(error.__dict__), repr(error.args)):
            assert KEY not in text and PASSWORD not in text
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is type(error) and clone.message == error.message
    assert KEY not in repr(client) and KEY not in str(client)
    with pytest.raises(TypeError):
        pickle.dumps(client)


def _report_text(settings, exc_info):
    settings.DEBUG = False
    return ExceptionReporter(None, *exc_info).get_traceback_text()


def test_a_traceback_report_hides_the_key_and_password(mocked, client, settings):
    mocked.post(TRUNKS_URL, status=500, json={"detail": "boom"})
    try:
        client.create_sip_trunk(PAYLOAD)
    except UpstreamError:
        text = _report_text(settings, sys.exc_info())
    assert "create_sip_trunk" in text
    assert KEY not in text and PASSWORD not in text


def test_an_unexpected_error_deep_in_requests_still_hides_the_secrets(mocked, client, settings):
    # A failure the client does not translate travels up through requests' own frames,
    # whose locals hold the headers and body: the report must still hide them.
    mocked.post(TRUNKS_URL, body=RuntimeError("unexpected"))
    try:
        client.create_sip_trunk(PAYLOAD)
    except RuntimeError:
        text = _report_text(settings, sys.exc_info())
    assert "requests" in text and "unexpected" in text
    assert KEY not in text and PASSWORD not in text


def test_the_shared_session_never_keeps_a_cookie_for_the_next_tenant(mocked):
    # One pooled session serves every tenant: a cookie set for one must not reach another.
    from trunks.crazytel.transport import shared_session

    mocked.get(
        BALANCE_URL,
        json={"account_code": "1", "balance": 1},
        headers={"Set-Cookie": "sid=abc; Path=/"},
    )
    first = CrazytelClient(base_url=BASE, api_key=KEY)
    second = CrazytelClient(base_url=BASE, api_key="ctk_other_tenant_key_000")
    assert first.session is second.session is shared_session()
    first.balance()
    second.balance()
    assert "Cookie" not in mocked.calls[1].request.headers
    assert mocked.calls[1].request.headers["x-crazytel-api-key"] == "ctk_other_tenant_key_000"
    assert len(shared_session().cookies) == 0
