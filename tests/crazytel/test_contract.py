"""The client over real HTTP, against two Crazytel stand-ins that share only the contract document:
the portal's sandbox (served by pytest-django's live_server) and tests/contract_server.py."""

import json
import logging
import os
import re
import socket
import time
from pathlib import Path

import pytest

import portal
from tests.processes import gunicorn_started, other_backends_end
from tests.tasks.conftest import shared_database  # noqa: F401
from tests.waiting import wait_until
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
from trunks.crazytel.parsing import VerifiedNumber
from trunks.sandbox.models import SandboxTrunk
from trunks.sandbox.services import (
    sandbox_account_ensure,
    sandbox_faults_clear,
    sandbox_faults_set,
)

from .contract_server import ContractServer

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "ctk_contract_5e4d3c2b1a09f8e7d6c5"
PASSWORD = "Contr4ctPassw0rd"
# The read timeout of the calls that must be answered: long enough that a loaded machine never
# turns a slow answer into a timeout (1 s failed once in three runs at load ~10); no test waits
# it out, and the drop test still proves it is not waited for.
READ_TIMEOUT = 5.0
# The tests of an answer that comes too late use a shorter read timeout (they wait it out), and an
# answer that comes well past it: half a second later, longer than a busy machine delays a thread.
SHORT_TIMEOUT = 0.4
# "Create, then time out" answers this long after creating.
LATE_ANSWER = SHORT_TIMEOUT + 0.6


class Target:
    """One Crazytel stand-in, driven through the same verbs whichever it is."""

    name: str
    base_url: str

    def client(self, api_key=KEY, read_timeout=READ_TIMEOUT) -> CrazytelClient:
        return CrazytelClient(
            base_url=self.base_url, api_key=api_key, connect_timeout=2, read_timeout=read_timeout
        )


class SandboxTarget(Target):
    name = "sandbox"

    def __init__(self, live_server):
        self.base_url = f"{live_server.url}/sandbox/api/v1"
        self.account = sandbox_account_ensure(name="Contract", api_key=KEY)
        self.expected_numbers = [
            VerifiedNumber(n["number"], n["label"]) for n in self.account.verified_numbers
        ]

    def landline(self):
        return next(n.number for n in self.expected_numbers if n.number.startswith("612"))

    def mobile(self):
        return next(n.number for n in self.expected_numbers if n.number.startswith("614"))

    def fault(self, kind, **kw):
        faults = {
            "status": {"forced_status": kw.get("code"), "retry_after": kw.get("retry_after")},
            "html": {"html_error": True, "forced_status": kw.get("code")},
            "drop": {"drop_connection": True},
            "malformed": {"malformed_json": True},
            "bad_username": {"invalid_username": True},
            "latency": {"latency_ms": int(kw.get("seconds", 0) * 1000)},
            "timeout_after_create": {
                "create_then_timeout": True,
                "timeout_sleep_ms": int(LATE_ANSWER * 1000),
            },
        }[kind]
        sandbox_faults_clear(account=self.account)
        sandbox_faults_set(account=self.account, fault_scope="all", fault_remaining=1, **faults)

    def limit(self, per_minute):
        self.account.rate_limit_per_minute = per_minute
        self.account.save()

    def trunk_usernames(self):
        return set(SandboxTrunk.objects.values_list("username", flat=True))

    def let_late_answer_go(self, due: float) -> None:
        """Wait until a delayed answer due at `due` (monotonic) has gone out, so that the live
        server's thread is done before the next test resets the data. A time, not a condition: the
        sandbox does not tell when a dropped request's handler has finished its delay."""
        time.sleep(max(0.0, due - time.monotonic()) + 0.2)


class ContractTarget(Target):
    name = "contract"

    def __init__(self, server: ContractServer):
        self.server = server
        self.base_url = server.url
        self.expected_numbers = [
            VerifiedNumber("61298765432", "Head office"),
            VerifiedNumber("61412345678", "Ops mobile"),
            VerifiedNumber("61731234567", ""),
        ]

    def landline(self):
        return "61298765432"

    def mobile(self):
        return "61412345678"

    def fault(self, kind, **kw):
        if kind == "timeout_after_create":
            kw = {"seconds": LATE_ANSWER}
        self.server.then(kind, **kw)

    def limit(self, per_minute):
        self.server.limit_per_minute = per_minute

    def trunk_usernames(self):
        return set(self.server.trunks)

    def let_late_answer_go(self, due: float) -> None:
        """Nothing to wait for: the server is this test's own, and its late answer touches nothing
        another test sees (the server stops with the test; the answer meets a closed socket)."""


@pytest.fixture
def contract_server():
    server = ContractServer(
        api_key=KEY,
        numbers=[
            ("+61 2 9876 5432", "Head office"),
            ("61-412-345-678", "Ops mobile"),
            ("61731234567", ""),
        ],
    ).start()
    yield server
    server.stop()


@pytest.fixture(params=["sandbox", "contract"])
def target(request):
    if request.param == "sandbox":
        return SandboxTarget(request.getfixturevalue("live_server"))
    return ContractTarget(request.getfixturevalue("contract_server"))


def payload(target, **overrides):
    return {
        "password": PASSWORD,
        "caller_id_number": target.landline(),
        "sms_sender": target.mobile(),
        "description": "Reception handset",
        "area_code": "02",
        "enabled": True,
        "hide_caller_id": False,
        "softphone_show_balance": True,
        "softphone_sync_sms": True,
        **overrides,
    }


def readable(error: CrazytelError) -> bool:
    return bool(error.message) and "<" not in error.message and len(error.message) < 600


# --- Success --------------------------------------------------------------------------------------


def test_it_lists_the_verified_numbers(target):
    assert target.client().verified_numbers() == target.expected_numbers


def test_it_creates_a_trunk_and_keeps_its_id_without_the_password(target):
    trunk = target.client().create_sip_trunk(payload(target))
    assert re.fullmatch(r"CT\d{6}", trunk.username)
    assert trunk.username in target.trunk_usernames()
    assert trunk.trunk_id and re.fullmatch(r"[0-9a-f-]{36}", trunk.trunk_id)
    assert trunk.response["username"] == trunk.username
    assert PASSWORD not in json.dumps(trunk.response)
    assert "password" not in trunk.response


def test_it_reads_the_balance(target):
    balance = target.client().balance()
    assert re.fullmatch(r"\d{7}", balance.account_code)
    assert balance.balance >= 0


def test_a_latency_under_the_timeout_is_only_slower(target):
    target.fault("latency", seconds=0.2)
    assert target.client().balance()


def test_the_sandbox_keeps_the_trunk_with_the_password_checkable_only(live_server):
    target = SandboxTarget(live_server)
    trunk = target.client().create_sip_trunk(payload(target))
    stored = SandboxTrunk.objects.get(username=trunk.username)
    assert str(stored.id) == trunk.trunk_id
    assert stored.check_password(PASSWORD) and PASSWORD not in stored.password_digest
    assert (stored.sms_sender, stored.softphone_sync_sms) == (target.mobile(), True)


def test_the_wire_format_is_exactly_the_contract(contract_server):
    target = ContractTarget(contract_server)
    client = target.client()
    client.verified_numbers()
    client.create_sip_trunk({**payload(target), "api_key": KEY})
    client.balance()
    get_numbers, create, balance = contract_server.requests
    assert (get_numbers.method, get_numbers.path) == ("GET", "/api/v1/account/verified-cli/")
    assert (create.method, create.path) == ("POST", "/api/v1/sip-trunks/")
    assert (balance.method, balance.path) == ("GET", "/api/v1/balance/")
    for recorded in contract_server.requests:
        assert recorded.headers["x-crazytel-api-key"] == KEY
        assert recorded.headers["user-agent"] == f"crazytel-trunk-portal/{portal.__version__}"
        assert recorded.headers["accept"] == "application/json"
        assert re.fullmatch(r"[0-9a-f]{32}", recorded.headers["x-request-id"])
        assert KEY not in recorded.path
    assert len({r.headers["x-request-id"] for r in contract_server.requests}) == 3
    assert get_numbers.body == b"" and balance.body == b""
    assert create.headers["content-type"] == "application/json"
    sent = create.json()
    assert sent == payload(target)  # the key never travels in the body
    types = {k: type(v) for k, v in sent.items()}
    assert types == {
        "password": str,
        "caller_id_number": str,
        "sms_sender": str,
        "description": str,
        "area_code": str,
        "enabled": bool,
        "hide_caller_id": bool,
        "softphone_show_balance": bool,
        "softphone_sync_sms": bool,
    }


# --- Every failure, mapped ------------------------------------------------------------------------


def test_a_wrong_key_is_rejected(target):
    with pytest.raises(RejectedKey) as info:
        target.client(api_key="not-the-key").balance()
    assert info.value.status == 401 and readable(info.value)


def test_a_weak_password_is_a_validation_error_on_the_password_field(target):
    with pytest.raises(ValidationFailed) as info:
        target.client().create_sip_trunk(payload(target, password="weakpass"))
    error = info.value
    assert error.status == 422 and readable(error)
    assert set(error.field_errors) == {"password"}
    assert any("uppercase" in m for m in error.field_errors["password"])
    assert PASSWORD not in str(error) and "weakpass" not in repr(error.__dict__)
    assert target.trunk_usernames() == set()


def test_an_unverified_caller_id_is_rejected_on_its_field(target):
    with pytest.raises(NumberRejected) as info:
        target.client().create_sip_trunk(payload(target, caller_id_number="61299990000"))
    assert info.value.status == 400 and readable(info.value)
    assert set(info.value.field_errors) == {"caller_id_number"}


def test_an_sms_sender_not_starting_614_is_rejected_on_its_field(target):
    with pytest.raises(NumberRejected) as info:
        target.client().create_sip_trunk(payload(target, sms_sender=target.landline()))
    assert set(info.value.field_errors) == {"sms_sender"}
    assert "614" in info.value.message


def test_going_over_the_rate_limit_is_rate_limited_with_retry_after(target):
    target.limit(1)
    client = target.client()
    client.balance()
    with pytest.raises(RateLimited) as info:
        client.balance()
    assert info.value.status == 429 and readable(info.value)
    assert 0 < info.value.retry_after <= 61
    assert f"{round(info.value.retry_after)} seconds" in info.value.message


def test_a_500_is_an_upstream_error(target):
    target.fault("status", code=500)
    with pytest.raises(UpstreamError) as info:
        target.client().create_sip_trunk(payload(target))
    assert info.value.status == 500 and readable(info.value)


def test_a_503_with_retry_after_is_an_upstream_error(target):
    target.fault("status", code=503, retry_after=30, headers={"Retry-After": "30"})
    with pytest.raises(UpstreamError) as info:
        target.client().balance()
    assert info.value.status == 503


def test_an_html_502_is_an_upstream_error_with_a_readable_message(target):
    target.fault("html", code=502)
    with pytest.raises(UpstreamError) as info:
        target.client().create_sip_trunk(payload(target))
    assert info.value.status == 502 and readable(info.value)
    assert "HTML" in info.value.message and "502 Bad Gateway" in info.value.message


def test_malformed_json_is_an_upstream_error(target):
    target.fault("malformed")
    with pytest.raises(UpstreamError, match="could not read as JSON"):
        target.client().create_sip_trunk(payload(target))


def test_a_2xx_without_a_valid_username_is_an_upstream_error(target):
    target.fault("bad_username")
    with pytest.raises(UpstreamError, match="no valid trunk username") as info:
        target.client().create_sip_trunk(payload(target))
    assert readable(info.value)


def test_a_dropped_connection_is_an_unknown_outcome_and_not_retried(target):
    target.fault("drop")
    client = target.client()
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as info:
        client.create_sip_trunk(payload(target))
    # The drop is seen at once, not by waiting for the read timeout.
    assert time.monotonic() - started < READ_TIMEOUT
    assert "lost" in info.value.message and readable(info.value)
    assert target.trunk_usernames() == set()
    # The fault was for one request: the next create works, and was not made by a retry.
    assert client.create_sip_trunk(payload(target)).username in target.trunk_usernames()
    assert len(target.trunk_usernames()) == 1


def test_a_timeout_after_creation_is_an_unknown_outcome_though_the_trunk_exists(target):
    target.fault("timeout_after_create")
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as info:
        target.client(read_timeout=SHORT_TIMEOUT).create_sip_trunk(payload(target))
    assert "may or may not" in info.value.message and readable(info.value)
    # Created, though the client could not know (made before the delay; a busy server may still
    # be writing it when the client gives up).
    wait_until(target.trunk_usernames, "the trunk created before the late answer")
    assert len(target.trunk_usernames()) == 1
    target.let_late_answer_go(started + LATE_ANSWER)


def test_a_latency_over_the_read_timeout_is_an_unknown_outcome(target):
    target.fault("latency", seconds=LATE_ANSWER)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        target.client(read_timeout=SHORT_TIMEOUT).create_sip_trunk(payload(target))
    # The server goes on after its delay and creates the trunk: wait for it, so that its late
    # work does not overlap the next test.
    wait_until(target.trunk_usernames, "the trunk created after the delay")
    assert len(target.trunk_usernames()) == 1
    target.let_late_answer_go(started + LATE_ANSWER)  # its answer goes out just after the trunk


def test_a_closed_port_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CrazytelClient(base_url=f"http://127.0.0.1:{port}/api/v1", api_key=KEY)
    with pytest.raises(Unreachable) as info:
        client.create_sip_trunk({"password": PASSWORD, "caller_id_number": "61298765432"})
    assert "Nothing was sent" in info.value.message


# --- Secrets ------------------------------------------------------------------------------------


def test_no_secret_in_any_log_record_through_full_cycles(target, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "django", "django.server", "django.request", "trunks"):
        caplog.set_level(logging.DEBUG, logger=name)
    client = target.client()
    errors = []
    client.verified_numbers()
    client.create_sip_trunk(payload(target))
    client.balance()

    def expect_failure(call):
        try:
            call()
        except CrazytelError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected a CrazytelError")

    expect_failure(lambda: client.create_sip_trunk(payload(target, password="weakpass1")))
    expect_failure(lambda: client.create_sip_trunk(payload(target, caller_id_number="61200000000")))
    expect_failure(lambda: target.client(api_key=KEY + "x").balance())
    for kind, kw in [
        ("status", {"code": 500}),
        ("html", {"code": 502}),
        ("drop", {}),
        ("malformed", {}),
        ("bad_username", {}),
    ]:
        target.fault(kind, **kw)
        expect_failure(lambda: client.create_sip_trunk(payload(target)))
    target.limit(1)  # already spent this minute
    expect_failure(client.balance)
    assert {type(e) for e in errors} == {
        ValidationFailed,
        NumberRejected,
        RejectedKey,
        UpstreamError,
        OutcomeUnknown,
        RateLimited,
    }
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert any("urllib3" in r.name for r in caplog.records)
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert KEY not in text, record.getMessage()
        assert PASSWORD not in text and "weakpass1" not in text, record.getMessage()
    for error in errors:
        for text in (str(error), repr(error), repr(error.field_errors)):
            assert KEY not in text and PASSWORD not in text and "weakpass1" not in text


# --- The drop fault under gunicorn (live_server and runserver are wsgiref) --------------------------


def test_a_dropped_connection_under_gunicorn_is_seen_at_once(shared_database):  # noqa: F811
    # The sandbox account and its fault are written here, on the test database the server
    # shares (committed: the module's tests are transactional).
    account = sandbox_account_ensure(name="G", api_key=KEY)
    sandbox_faults_set(account=account, drop_connection=True, fault_remaining=1)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": shared_database,
        "CACHE_URL": "locmemcache://gunicorn",
        "SANDBOX_ENABLED": "true",
        "DEBUG": "true",
        "SECURE_SSL_REDIRECT": "false",
    }
    proc, port = gunicorn_started(cwd=root, env=env)
    try:
        client = CrazytelClient(
            base_url=f"http://127.0.0.1:{port}/sandbox/api/v1", api_key=KEY, read_timeout=5
        )
        # The calls around the drop may wait for gunicorn (its worker loads the app lazily, and
        # replaces the one that dropped): on a busy machine longer than the 5 s read timeout. The
        # first waits in the listening socket's backlog until the worker is up.
        patient = CrazytelClient(
            base_url=f"http://127.0.0.1:{port}/sandbox/api/v1", api_key=KEY, read_timeout=60
        )
        numbers = patient.verified_numbers()  # not a create: the fault is for creates
        body = {"password": PASSWORD, "caller_id_number": numbers[0].number}
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown, match="lost"):
            client.create_sip_trunk(body)
        assert time.monotonic() - started < 5  # dropped, not left to time out
        assert re.fullmatch(r"CT\d{6}", patient.create_sip_trunk(body).username)
    finally:
        proc.terminate()
        proc.wait(10)
        other_backends_end()  # PostgreSQL: the server's connection, before the flush
