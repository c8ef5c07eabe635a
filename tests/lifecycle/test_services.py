"""trunk_change: only what changed is sent, once per form, never over a newer change, every
outcome recorded and shown; the Trunk record made with the create."""

import json

import pytest
import requests
import responses

from tests.trunk_fixtures import API_KEY_A, CANARY
from trunks.errors import NotPermitted
from trunks.lifecycle.services import (
    MESSAGE_NOTHING_CHANGED,
    trunk_change,
    trunk_change_resolve,
)
from trunks.models import AuditKind, AuditRecord, AuditStatus, Trunk, TrunkState
from trunks.provisioning.messages import (
    MESSAGE_CHANGE_UNKNOWN,
    MESSAGE_CHANGE_UNREACHABLE,
    MESSAGE_REJECTED_KEY,
    MESSAGE_TRUNK_MISSING,
)

from .conftest import PATCH_URL, TRUNK_ID

NEW_PASSWORD = "Fresh7PasswordQq"


def _change(trunk, actor, token="tok-change-000000001", **wanted):
    trunk.refresh_from_db()
    return trunk_change(
        actor=actor, trunk=trunk, wanted=wanted, version=trunk.version, submission_token=token
    )


def _patches(mock):
    return [c for c in mock.calls if c.request.method == "PATCH"]


def test_a_successful_create_adds_the_trunk_record_in_the_same_transaction(alices_trunk, alice):
    trunk = alices_trunk
    assert trunk.trunk_id == TRUNK_ID
    assert trunk.created_by == alice and trunk.created_record.status == AuditStatus.SUCCEEDED
    assert trunk.caller_id_number == "61298765432" and trunk.description == "Reception"
    assert trunk.enabled and trunk.version == 1 and trunk.state == TrunkState.CONFIRMED


def test_suspending_sends_exactly_enabled_false_with_the_key_at_the_trunks_id(
    alices_trunk, alice, crazytel
):
    crazytel.patch(PATCH_URL, json={"id": TRUNK_ID, "username": "CT123456", "enabled": False})
    result = _change(alices_trunk, alice, enabled=False)
    assert result.succeeded
    (call,) = _patches(crazytel)
    assert call.request.url == PATCH_URL
    assert json.loads(call.request.body) == {"enabled": False}
    assert call.request.headers["x-crazytel-api-key"] == API_KEY_A
    trunk = Trunk.objects.get(pk=alices_trunk.pk)
    assert not trunk.enabled and trunk.version == 2 and trunk.updated_by == alice
    record = result.record
    assert record.kind == AuditKind.TRUNK_SUSPENDED and record.status == AuditStatus.SUCCEEDED
    assert record.data["changes"] == {"enabled": [True, False]}
    assert record.record_hash and record.trunk_username == "CT123456"


def test_nothing_changed_sends_nothing_and_records_nothing(alices_trunk, alice, crazytel):
    before = AuditRecord.objects.count()
    result = _change(alices_trunk, alice, description="Reception", enabled=True)
    assert result.nothing and result.message == MESSAGE_NOTHING_CHANGED
    assert not _patches(crazytel) and AuditRecord.objects.count() == before


def test_a_password_change_is_shown_once_and_never_stored(alices_trunk, alice, crazytel):
    crazytel.patch(PATCH_URL, status=204)
    result = _change(alices_trunk, alice, password=NEW_PASSWORD)
    assert result.succeeded and result.password == NEW_PASSWORD
    assert json.loads(_patches(crazytel)[0].request.body) == {"password": NEW_PASSWORD}
    assert result.record.kind == AuditKind.TRUNK_PASSWORD_CHANGED
    assert result.record.data == {
        "trunk": "CT123456",
        "version": 2,
        "changes": {},
        "password_changed": True,
    }
    for record in AuditRecord.objects.all():
        assert NEW_PASSWORD not in json.dumps([record.data, record.response, record.error_message])
        assert CANARY not in json.dumps([record.data, record.response, record.error_message])
    assert Trunk.objects.get(pk=alices_trunk.pk).password_changed_at is not None


def test_an_empty_200_means_the_sent_values_applied(alices_trunk, alice, crazytel):
    crazytel.patch(PATCH_URL, body="", status=200)
    result = _change(alices_trunk, alice, caller_id_number="61387654321", description="Lobby")
    assert result.succeeded
    trunk = Trunk.objects.get(pk=alices_trunk.pk)
    assert (trunk.caller_id_number, trunk.description) == ("61387654321", "Lobby")
    assert result.record.kind == AuditKind.TRUNK_UPDATED
    assert result.record.data["changes"]["description"] == ["Reception", "Lobby"]


def test_the_same_token_twice_makes_one_upstream_call(alices_trunk, alice, crazytel):
    crazytel.patch(PATCH_URL, json={"enabled": False})
    first = _change(alices_trunk, alice, token="tok-same-00000000001", enabled=False)
    trunk = Trunk.objects.get(pk=alices_trunk.pk)
    second = trunk_change(
        actor=alice, trunk=trunk, wanted={"enabled": False}, version=1,
        submission_token="tok-same-00000000001",
    )  # fmt: skip
    assert first.succeeded and second.duplicate and second.record.pk == first.record.pk
    assert len(_patches(crazytel)) == 1


def test_a_change_made_since_the_page_was_rendered_is_a_conflict(alices_trunk, alice, crazytel):
    crazytel.patch(PATCH_URL, json={"enabled": False})
    _change(alices_trunk, alice, token="tok-first-0000000001", enabled=False)
    stale = trunk_change(
        actor=alice, trunk=alices_trunk, wanted={"description": "Old page"}, version=1,
        submission_token="tok-stale-0000000001",
    )  # fmt: skip
    assert stale.conflict and len(_patches(crazytel)) == 1
    assert [r.kind for r in stale.changed_since] == [AuditKind.TRUNK_SUSPENDED]


def test_staff_may_not_change_a_colleagues_trunk(alices_trunk, crazytel, tenant_a):
    from tests.factories import UserFactory
    from trunks.models import Role

    colleague = UserFactory(username="carol", member_of=tenant_a, member_of__role=Role.STAFF)
    with pytest.raises(NotPermitted):
        _change(alices_trunk, colleague, enabled=False)
    assert not _patches(crazytel)


def test_a_manager_may_change_any_trunk_of_the_tenant(alices_trunk, mallory, crazytel):
    crazytel.patch(PATCH_URL, json={"enabled": False})
    assert _change(alices_trunk, mallory, enabled=False).succeeded


@pytest.mark.parametrize(
    ("reply", "status", "message", "state"),
    [
        (
            {"status": 400, "json": {"detail": "Caller ID not verified"}},
            AuditStatus.FAILED,
            "Crazytel refused a number",
            TrunkState.CONFIRMED,
        ),
        ({"status": 401, "json": {"detail": "x"}}, AuditStatus.FAILED, MESSAGE_REJECTED_KEY, TrunkState.CONFIRMED),
        ({"status": 404, "json": {"detail": "SIP trunk not found"}}, AuditStatus.FAILED, MESSAGE_TRUNK_MISSING, TrunkState.MISSING),
        (
            {"status": 422, "json": {"detail": [{"loc": ["body", "description"], "msg": "too long", "type": "x"}]}},
            AuditStatus.FAILED,
            "Crazytel refused the values",
            TrunkState.CONFIRMED,
        ),
        ({"status": 429, "json": {"detail": "slow"}, "headers": {"Retry-After": "7"}}, AuditStatus.FAILED, "try again in 7 seconds", TrunkState.CONFIRMED),
        ({"status": 500, "json": {"detail": "boom"}}, AuditStatus.UNKNOWN, MESSAGE_CHANGE_UNKNOWN, TrunkState.UNCONFIRMED),
        ({"status": 502, "body": "<html><title>502 Bad Gateway</title></html>", "content_type": "text/html"}, AuditStatus.UNKNOWN, MESSAGE_CHANGE_UNKNOWN, TrunkState.UNCONFIRMED),
        ({"body": requests.ConnectionError("refused")}, AuditStatus.UNKNOWN, MESSAGE_CHANGE_UNKNOWN, TrunkState.UNCONFIRMED),
        ({"body": requests.ConnectTimeout("no")}, AuditStatus.FAILED, MESSAGE_CHANGE_UNREACHABLE, TrunkState.CONFIRMED),
        ({"body": requests.ReadTimeout("late")}, AuditStatus.UNKNOWN, MESSAGE_CHANGE_UNKNOWN, TrunkState.UNCONFIRMED),
    ],
    ids=["400", "401", "404", "422", "429", "500", "html-502", "reset", "unreachable", "timeout"],
)  # fmt: skip
def test_every_outcome_is_recorded_and_explained(
    alices_trunk, alice, crazytel, reply, status, message, state
):
    crazytel.add(responses.PATCH, PATCH_URL, **reply)
    result = _change(alices_trunk, alice, description="Lobby")
    assert result.status == status
    assert message in result.message
    assert result.record.status == status and result.record.record_hash
    trunk = Trunk.objects.get(pk=alices_trunk.pk)
    assert trunk.state == state and trunk.change_record_id == (
        result.record.pk if state == TrunkState.UNCONFIRMED else None
    )
    if state == TrunkState.UNCONFIRMED:
        assert trunk.requested == {"settings": {"description": "Lobby"}, "password": False}
        assert trunk.description == "Reception"  # the last confirmed


def test_a_change_the_portals_own_limiter_holds_back_is_recorded_not_sent(
    alices_trunk, alice, crazytel
):
    """After Crazytel's 429 asks for a pause, the next change is held back by the portal: nothing
    is sent, and it is recorded apart from Crazytel's refusals — as a create held back is."""
    crazytel.add(responses.PATCH, PATCH_URL, status=429, headers={"Retry-After": "30"})
    busy = _change(alices_trunk, alice, description="Lobby")
    assert busy.status == AuditStatus.FAILED and "try again in 30 seconds" in busy.message

    held = _change(alices_trunk, alice, token="tok-change-000000002", description="Lobby")
    assert len(_patches(crazytel)) == 1, "nothing was sent while the pause lasts"
    assert held.status == AuditStatus.NOT_SENT and held.record.status == AuditStatus.NOT_SENT
    assert "Nothing was sent" in held.message or "held" in held.message
    assert held.retry_after and 0 < held.retry_after <= 30
    assert Trunk.objects.get(pk=alices_trunk.pk).state == TrunkState.CONFIRMED


def test_send_again_confirms_an_unconfirmed_change(alices_trunk, alice, crazytel):
    crazytel.patch(PATCH_URL, status=500, json={"detail": "boom"})
    _change(alices_trunk, alice, token="tok-lost-00000000001", description="Lobby")
    crazytel.replace(responses.PATCH, PATCH_URL, json={"description": "Lobby"})
    trunk = Trunk.objects.get(pk=alices_trunk.pk)
    again = trunk_change(
        actor=alice, trunk=trunk, wanted={}, version=trunk.version,
        submission_token="tok-again-0000000001", send_again=True,
    )  # fmt: skip
    assert again.succeeded
    assert json.loads(_patches(crazytel)[-1].request.body) == {"description": "Lobby"}
    trunk.refresh_from_db()
    assert trunk.state == TrunkState.CONFIRMED and trunk.description == "Lobby"


def test_a_manager_resolves_an_unconfirmed_change_as_applied(
    alices_trunk, alice, mallory, crazytel
):
    crazytel.patch(PATCH_URL, status=500, json={"detail": "boom"})
    _change(alices_trunk, alice, description="Lobby")
    with pytest.raises(NotPermitted):
        trunk_change_resolve(actor=alice, trunk=alices_trunk, applied=True, note="seen")
    event = trunk_change_resolve(
        actor=mallory, trunk=alices_trunk, applied=True, note="seen in Crazytel"
    )
    assert event.kind == AuditKind.OUTCOME_RESOLVED and event.data["applied"] is True
    trunk = Trunk.objects.get(pk=alices_trunk.pk)
    assert trunk.state == TrunkState.CONFIRMED and trunk.description == "Lobby"
    assert trunk.version == 2


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_posts_of_one_rendered_action_make_one_upstream_call(
    alices_trunk, alice, crazytel
):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers (the sequential test covers it)")
    barrier = threading.Barrier(2)
    gate = threading.Event()
    results = []

    def slow(request):
        gate.wait(5)
        return (200, {}, '{"enabled": false}')

    crazytel.add_callback(responses.PATCH, PATCH_URL, callback=slow)

    def submit():
        try:
            barrier.wait(5)
            trunk = Trunk.objects.get(pk=alices_trunk.pk)
            results.append(
                trunk_change(
                    actor=alice,
                    trunk=trunk,
                    wanted={"enabled": False},
                    version=1,
                    submission_token="race-change-00000001",
                )
            )
        finally:
            gate.set()
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    assert len(_patches(crazytel)) == 1
    assert AuditRecord.objects.filter(kind=AuditKind.TRUNK_SUSPENDED).count() == 1
    assert sorted(r.duplicate for r in results) == [False, True]
