"""A hostile upstream over real sockets (tests/crazytel/hostile_server.py), not a mock: a body
nested 200 000 deep, an answer dripping a byte at a time, and what DEBUG's 500 page shows."""

import sys
import time

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from trunks.crazytel import client as client_module
from trunks.crazytel.client import CrazytelClient
from trunks.crazytel.errors import NumberRejected, OutcomeUnknown, UpstreamError

from .hostile_server import HostileServer

KEY = "ctk_live_hostile_5e4d3c2b1a09"
PASSWORD = "Drip5ecretTrunkPw"
PAYLOAD = {"password": PASSWORD, "caller_id_number": "61298765432"}
# The production case is a byte a second against a 20 s limit; scaled down so the suite does not
# wait for it: a byte every 0.15 s against a 0.6 s limit. Each byte still comes well within a read
# timeout (a quarter of it), so only the deadline on the wall clock can end the call.
LIMIT = 0.6
DRIP_EVERY = 0.15


def _client(server: HostileServer, *, read_timeout: float = 5.0) -> CrazytelClient:
    return CrazytelClient(
        base_url=server.base_url, api_key=KEY, connect_timeout=1.0, read_timeout=read_timeout
    )


CALLS = {
    "numbers": lambda c: c.verified_numbers(),
    "balance": lambda c: c.balance(),
    "create": lambda c: c.create_sip_trunk(dict(PAYLOAD)),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_body_nested_200000_deep_is_the_contract_error_on_every_call(call):
    with HostileServer(mode="nested") as server, pytest.raises(UpstreamError) as caught:
        CALLS[call](_client(server))
    assert "could not read as JSON" in caught.value.message
    assert KEY not in str(caught.value) and PASSWORD not in str(caught.value)


@pytest.mark.parametrize(("status", "error"), [(400, NumberRejected), (500, UpstreamError)])
def test_an_error_answer_nested_200000_deep_is_still_its_typed_error(status, error):
    with HostileServer(mode="nested", status=status) as server, pytest.raises(error):
        _client(server).create_sip_trunk(dict(PAYLOAD))


@pytest.mark.parametrize("mode", ["drip", "drip_head"])
@pytest.mark.parametrize("call", ["numbers", "create"])
def test_a_dripping_answer_ends_within_the_limit_plus_one_second(call, mode):
    """Whether the body or the headers drip: each byte comes well within a read timeout, so only
    a deadline on the wall clock ends the call."""
    with HostileServer(mode=mode, drip_every=DRIP_EVERY) as server:
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown) as caught:
            CALLS[call](_client(server, read_timeout=LIMIT))
        elapsed = time.monotonic() - started
    assert elapsed < LIMIT + 1.0, f"held for {elapsed:.1f} s with a {LIMIT:g} s limit"
    assert f"within {LIMIT:g} seconds" in caught.value.message


def test_debugs_500_page_shows_neither_the_key_nor_the_password(settings, monkeypatch):
    """A bug deep in the client (here, the parse of a create's answer) under DEBUG: the technical
    500 page lists every frame's variables, the POST and the settings — none may hold a secret."""
    settings.DEBUG = True

    def broken_parse(*args, **kwargs):
        raise RuntimeError("a bug while reading the answer")

    monkeypatch.setattr(client_module, "parse_json_body", broken_parse)
    request = RequestFactory().post(
        "/trunks/new/", {"password": PASSWORD, "caller_id_number": "61298765432"}
    )
    with HostileServer(mode="drip", drip_every=0.0) as server:
        try:
            _client(server).create_sip_trunk(dict(PAYLOAD))
        except RuntimeError:
            html = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
        else:
            pytest.fail("the patched parse did not raise")
    assert "_send" in html and "a bug while reading the answer" in html  # the page is real
    assert KEY not in html
    assert PASSWORD not in html
