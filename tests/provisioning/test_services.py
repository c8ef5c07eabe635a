"""trunk_create and verified_numbers_get: the attempt recorded first, every outcome mapped."""

import json

import pytest
import requests
import responses
from django.core.cache import cache

from tests.provisioning.faults import FAILURES
from tests.trunk_fixtures import (
    API_KEY_A,
    CANARY,
    NUMBERS_URL,
    TRUNKS_URL,
    create_calls,
    created,
    sent_json,
)
from trunks.models import AuditRecord, AuditStatus
from trunks.provisioning.messages import (
    TrunkError,
)
from trunks.provisioning.numbers import verified_numbers_cache_key, verified_numbers_get
from trunks.provisioning.services import trunk_create, trunk_payload_build
from trunks.provisioning.tokens import submission_token_issue, submission_token_nonce

DATA = {
    "caller_id_number": "61298765432",
    "sms_sender": "61412345678",
    "password": CANARY,
    "description": "Reception",
    "area_code": "02",
    "enabled": True,
    "hide_caller_id": False,
    "softphone_show_balance": True,
    "softphone_sync_sms": True,
}


def _create(tenant, actor, token="tok-0000000000000001", **kwargs):
    return trunk_create(
        actor=actor, tenant=tenant, data=dict(DATA), request=None, submission_token=token, **kwargs
    )


def _no_password_stored():
    for record in AuditRecord.objects.all():
        for value in (record.data, record.response, record.error_message, record.description):
            assert CANARY not in str(value)


# --- the request Crazytel receives ----------------------------------------------------------------


def test_it_sends_exactly_the_documented_fields_with_their_types(keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, json=created())
    result = _create(keyed_a, alice)
    assert result.succeeded
    [call] = create_calls(crazytel)
    assert call.request.headers["x-crazytel-api-key"] == API_KEY_A
    assert call.request.headers["Content-Type"].startswith("application/json")
    body = sent_json(call)
    assert body == {
        "password": CANARY,
        "caller_id_number": "61298765432",
        "enabled": True,
        "area_code": "02",
        "description": "Reception",
        "hide_caller_id": False,
        "sms_sender": "61412345678",
        "softphone_show_balance": True,
        "softphone_sync_sms": True,
    }
    assert "api_key" not in body
    assert API_KEY_A not in call.request.url


def test_empty_optional_text_fields_are_left_out_not_sent_empty():
    payload = trunk_payload_build(
        data={
            **DATA,
            "sms_sender": "",
            "description": "",
            "area_code": "",
            "softphone_sync_sms": False,
        }
    )
    assert set(payload) == {
        "password",
        "caller_id_number",
        "enabled",
        "hide_caller_id",
        "softphone_show_balance",
        "softphone_sync_sms",
    }
    assert all(type(payload[k]) is bool for k in ("enabled", "hide_caller_id"))


# --- success ----------------------------------------------------------------------------------------


def test_success_records_username_and_trunk_id_and_never_the_password(keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, json=created("CT654321", password=CANARY, sip_password=CANARY))
    result = _create(keyed_a, alice)
    assert result.status == AuditStatus.SUCCEEDED
    assert result.username == "CT654321"
    assert result.password == CANARY  # for the one page that shows it
    record = AuditRecord.objects.get()
    assert record.status == AuditStatus.SUCCEEDED
    assert record.trunk_username == "CT654321"
    assert record.trunk_id == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    assert record.upstream_status == 200
    assert record.actor == alice and record.tenant == keyed_a
    assert record.data["caller_id_number"] == "61298765432"
    assert "password" not in record.data
    assert "password" not in record.response and "sip_password" not in record.response
    assert record.record_hash  # sealed into the chain
    _no_password_stored()


def test_the_attempt_is_pending_in_the_database_while_crazytel_is_called(keyed_a, alice, crazytel):
    seen = {}

    def callback(request):
        seen["status"] = AuditRecord.objects.get().status
        return (200, {}, '{"username": "CT111111"}')

    crazytel.add_callback(responses.POST, TRUNKS_URL, callback=callback)
    _create(keyed_a, alice)
    assert seen["status"] == AuditStatus.PENDING
    assert AuditRecord.objects.get().status == AuditStatus.SUCCEEDED


# --- every failure class ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAILURES, ids=str)
def test_each_upstream_fault_gives_its_typed_error_status_and_message(
    keyed_a, alice, crazytel, fault
):
    crazytel.post(TRUNKS_URL, **fault.reply)
    result = _create(keyed_a, alice)
    assert result.status == fault.status
    assert result.category == fault.category
    assert fault.message in result.message
    if fault.field:
        assert result.field_errors[fault.field]
    record = AuditRecord.objects.get()
    assert record.status == fault.status
    assert record.error_category == fault.category
    assert record.finished_at is not None and record.record_hash
    assert len(create_calls(crazytel)) == 1  # never retried on its own
    _no_password_stored()
    assert CANARY not in result.message
    assert CANARY not in str(result.field_errors)


def test_400_names_the_field_crazytel_complained_about(keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, status=400, json={"detail": "Caller ID number is not verified"})
    result = _create(keyed_a, alice)
    assert list(result.field_errors) == ["caller_id_number"]


def test_429_without_retry_after_says_a_minute(keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, status=429, json={"detail": "slow down"})
    result = _create(keyed_a, alice)
    assert "try again in 60 seconds" in result.message
    assert result.retry_after == 60


def test_401_flags_the_tenants_connection_as_failing(keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, status=401, json={"detail": "bad key"})
    _create(keyed_a, alice)
    keyed_a.refresh_from_db()
    assert keyed_a.connection_ok is False
    assert "401" in keyed_a.connection_message
    assert keyed_a.connection_checked_at is not None


def test_an_echoed_password_in_an_error_is_masked_everywhere(keyed_a, alice, crazytel):
    crazytel.post(
        TRUNKS_URL,
        status=422,
        json={"detail": [{"loc": ["body", "password"], "msg": f"bad: {CANARY}", "type": "x"}]},
    )
    result = _create(keyed_a, alice)
    assert CANARY not in str(result.field_errors)
    _no_password_stored()


def test_a_bug_after_the_call_started_leaves_the_attempt_unknown_not_pending(
    keyed_a, alice, crazytel, monkeypatch
):
    crazytel.post(TRUNKS_URL, json=created())

    def boom(**kwargs):
        raise RuntimeError("bug")

    from trunks.provisioning import services

    original = services.audit_attempt_finish
    calls = {"n": 0}

    def finish_once_broken(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug while recording")
        return original(**kwargs)

    monkeypatch.setattr(services, "audit_attempt_finish", finish_once_broken)
    with pytest.raises(RuntimeError):
        _create(keyed_a, alice)
    assert AuditRecord.objects.get().status == AuditStatus.UNKNOWN


# --- tokens, tenants, retries -----------------------------------------------------------------------


def test_a_second_submission_of_one_token_returns_the_first_result_without_calling(
    keyed_a, alice, crazytel
):
    crazytel.post(TRUNKS_URL, json=created("CT222222"))
    first = _create(keyed_a, alice, token="same-token-000000001")
    again = _create(keyed_a, alice, token="same-token-000000001")
    assert first.succeeded and not first.duplicate
    assert again.duplicate and again.succeeded and again.username == "CT222222"
    assert again.password == ""  # shown once, on the first response only
    assert len(create_calls(crazytel)) == 1
    assert AuditRecord.objects.count() == 1


@pytest.mark.parametrize("change", [{"is_active": False}, {"api_key_ciphertext": ""}])
def test_an_inactive_or_keyless_tenant_is_refused_before_anything_is_recorded_or_sent(
    keyed_a, alice, crazytel, change
):
    for name, value in change.items():
        setattr(keyed_a, name, value)
    keyed_a.save()
    with pytest.raises(TrunkError):
        _create(keyed_a, alice)
    assert AuditRecord.objects.count() == 0
    assert create_calls(crazytel) == []


def test_an_unreadable_stored_key_fails_the_attempt_without_calling(keyed_a, alice, crazytel):
    keyed_a.api_key_ciphertext = "not-a-fernet-token"
    keyed_a.save()
    result = _create(keyed_a, alice)
    assert result.status == AuditStatus.FAILED and result.category == "credentials"
    assert create_calls(crazytel) == []


def test_a_retry_of_an_unknown_attempt_is_linked_to_it(keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, body=requests.ReadTimeout("timed out"))
    unknown = _create(keyed_a, alice, token="tok-unknown-00000001")
    assert unknown.unknown
    crazytel.replace(responses.POST, TRUNKS_URL, json=created("CT333333"))
    retry = _create(keyed_a, alice, token="tok-retry-0000000001", retry_of=unknown.record)
    assert retry.succeeded
    assert retry.record.related_id == unknown.record.pk
    assert retry.record.data["retry_of"] == str(unknown.record.uuid)


def test_only_an_unknown_attempt_of_the_same_tenant_can_be_retried(
    keyed_a, keyed_b, alice, crazytel
):
    crazytel.post(TRUNKS_URL, json=created())
    done = _create(keyed_a, alice, token="tok-done-00000000001")
    with pytest.raises(TrunkError):
        _create(keyed_a, alice, token="tok-retry-0000000002", retry_of=done.record)


def test_submission_tokens_are_bound_to_their_user(alice, bob):
    token = submission_token_issue(user=alice)
    nonce = submission_token_nonce(user=alice, token=token)
    assert nonce and len(nonce) <= 64
    assert submission_token_nonce(user=bob, token=token) is None
    assert submission_token_nonce(user=alice, token=token + "x") is None
    assert submission_token_nonce(user=alice, token="") is None


# --- verified numbers -------------------------------------------------------------------------------


def test_numbers_are_cached_per_tenant_and_refresh_asks_again(keyed_a, keyed_b, crazytel):
    crazytel.get("https://crazytel-b.test/api/v1/account/verified-cli/", json=["61299990000"])
    first = verified_numbers_get(tenant=keyed_a)
    second = verified_numbers_get(tenant=keyed_a)
    other = verified_numbers_get(tenant=keyed_b)
    assert [n.number for n in first.numbers] == [
        "61298765432",
        "61412345678",
        "61487654321",
        "61387654321",
    ]
    assert second.from_cache and second.numbers == first.numbers
    assert [n.number for n in other.numbers] == ["61299990000"]
    numbers_calls = [c for c in crazytel.calls if c.request.url == NUMBERS_URL]
    assert len(numbers_calls) == 1
    verified_numbers_get(tenant=keyed_a, refresh=True)
    assert len([c for c in crazytel.calls if c.request.url == NUMBERS_URL]) == 2


def test_the_numbers_cache_key_never_holds_the_api_key(keyed_a):
    key = verified_numbers_cache_key(tenant=keyed_a)
    assert API_KEY_A not in key and API_KEY_A[-4:] not in key
    assert str(keyed_a.pk) in key


def test_a_replaced_key_never_reads_the_old_accounts_cached_numbers(keyed_a, crazytel):
    from tests.trunk_fixtures import key_tenant

    verified_numbers_get(tenant=keyed_a)
    before = verified_numbers_cache_key(tenant=keyed_a)
    key_tenant(keyed_a, "ct-live-key-alpha-0002-new")
    assert verified_numbers_cache_key(tenant=keyed_a) != before


@pytest.mark.parametrize(
    ("reply", "category", "phrase"),
    [
        (dict(status=401, json={"detail": "no"}), "rejected_key", "an admin must replace it"),
        (
            dict(body=requests.ConnectTimeout("connect timed out")),
            "unreachable",
            "could not be reached",
        ),
        (dict(status=200, json={"weird": True}), "upstream", "could not be read"),
    ],
)
def test_numbers_failures_say_why_and_are_not_cached(keyed_a, crazytel, reply, category, phrase):
    crazytel.replace(responses.GET, NUMBERS_URL, **reply)
    result = verified_numbers_get(tenant=keyed_a)
    assert not result.ok and result.category == category and phrase in result.error
    assert cache.get(verified_numbers_cache_key(tenant=keyed_a)) is None
    if category == "rejected_key":
        keyed_a.refresh_from_db()
        assert keyed_a.connection_ok is False


@pytest.mark.django_db(transaction=True)
def test_two_processes_racing_with_one_token_are_decided_by_the_database(keyed_a, alice, crazytel):
    """Both pass every check in Python at the same moment: the unique token still lets one through
    (on SQLite too: its test database is a file, each thread on its own connection)."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(2)
    gate = threading.Event()
    results = []

    def slow(request):
        gate.wait(5)
        return (200, {}, '{"username": "CT818181"}')

    crazytel.add_callback(responses.POST, TRUNKS_URL, callback=slow)

    def submit():
        try:
            barrier.wait(5)
            results.append(_create(keyed_a, alice, token="race-token-000000001"))
        finally:
            gate.set()
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    assert len(create_calls(crazytel)) == 1
    assert AuditRecord.objects.count() == 1
    assert sorted(r.duplicate for r in results) == [False, True]


def test_a_422_naming_another_field_lands_there_not_on_the_password(keyed_a, alice, crazytel):
    crazytel.post(
        TRUNKS_URL,
        status=422,
        json={"detail": [{"loc": ["body", "description"], "msg": "Too long", "type": "x"}]},
    )
    result = _create(keyed_a, alice)
    assert list(result.field_errors) == ["description"]


def test_a_422_without_a_field_is_put_on_the_password(keyed_a, alice, crazytel):
    crazytel.post(TRUNKS_URL, status=422, json={"detail": "Unprocessable"})
    result = _create(keyed_a, alice)
    assert "password" in result.field_errors


# --- Verified numbers: one fetch on a cold cache --------------------------------------------------


# Committed data: the threads use their own database connections (the rate limiter writes).
@pytest.mark.django_db(transaction=True)
def test_on_a_cold_cache_one_caller_fetches_the_numbers_while_the_others_wait(keyed_a, crazytel):
    import threading
    import time

    from tests.trunk_fixtures import NUMBERS

    def slow_numbers(request):
        time.sleep(0.3)  # a slow Crazytel is the subject: the others must wait, not call too
        return (200, {"Content-Type": "application/json"}, json.dumps(NUMBERS))

    crazytel.remove(responses.GET, NUMBERS_URL)
    crazytel.add_callback(responses.GET, NUMBERS_URL, callback=slow_numbers)
    start = threading.Barrier(10)
    results = []

    def staff_opens_the_form():
        from django.db import connections

        try:
            start.wait()
            results.append(verified_numbers_get(tenant=keyed_a))
        finally:
            connections.close_all()  # this thread's own connections

    threads = [threading.Thread(target=staff_opens_the_form) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(results) == 10 and all(r.ok for r in results)
    assert len([c for c in crazytel.calls if c.request.url == NUMBERS_URL]) == 1
    assert sum(not r.from_cache for r in results) == 1
    assert {tuple(n.number for n in r.numbers) for r in results} == {
        tuple(n["number"] for n in NUMBERS)
    }


def test_waiters_fetch_themselves_when_the_fetch_fails(keyed_a, crazytel):
    # Failures are not cached: the lock is released and the next caller asks again.
    crazytel.replace(responses.GET, NUMBERS_URL, status=503, body="down")
    assert not verified_numbers_get(tenant=keyed_a).ok
    crazytel.replace(responses.GET, NUMBERS_URL, json=[{"number": "61412345678"}])
    again = verified_numbers_get(tenant=keyed_a)
    assert again.ok and not again.from_cache
    assert cache.get(verified_numbers_cache_key(tenant=keyed_a) + ":fetching") is None


def test_a_lapsed_lock_never_blocks_for_longer_than_the_wait(keyed_a, crazytel, monkeypatch):
    from trunks.provisioning import numbers

    monkeypatch.setattr(numbers, "NUMBERS_WAIT", 0.2)
    cache.set(verified_numbers_cache_key(tenant=keyed_a) + ":fetching", "a crashed process", 30)
    numbers = verified_numbers_get(tenant=keyed_a)
    assert numbers.ok and not numbers.from_cache
