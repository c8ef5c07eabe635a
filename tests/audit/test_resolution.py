"""Unknown outcomes resolved, not forgotten: managers record what Crazytel's account shows, as a new
event pointing at the attempt (never an edit of it), once, in their own tenants only."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import audit_attempt
from trunks.audit.chain import audit_chain_verify, record_hash_compute
from trunks.audit.rendered import RESULTS
from trunks.audit.services import audit_unknown_resolve
from trunks.errors import Conflict, InvalidInput, NotPermitted
from trunks.models import AuditKind, AuditRecord, AuditStatus

LIST = reverse("audit:list")


@pytest.fixture
def unknown(tenant_a, alice):
    return audit_attempt(
        tenant=tenant_a, actor=alice, status="unknown", description="Level 3 reception"
    )


def _resolve_url(record) -> str:
    return reverse("audit:resolve", args=[record.pk])


def _detail_url(record) -> str:
    return reverse("audit:detail", args=[record.pk])


# --- The service ---------------------------------------------------------------------------------


def test_a_manager_resolves_an_unknown_attempt_as_created_with_a_new_event(unknown, mallory):
    before = AuditRecord.objects.get(pk=unknown.pk)
    event = audit_unknown_resolve(
        actor=mallory,
        record=unknown,
        created=True,
        username="CT123456",
        note="Seen in the Crazytel account",
    )
    assert event.kind == AuditKind.OUTCOME_RESOLVED
    assert event.related_id == unknown.pk
    assert event.tenant_id == unknown.tenant_id
    assert event.actor_username == "mallory"
    assert event.trunk_username == "CT123456"
    assert event.data == {
        "attempt": str(unknown.uuid),
        "created": True,
        "trunk_username": "CT123456",
        "note": "Seen in the Crazytel account",
    }
    # The attempt itself is untouched: same status, same hash, still in an intact chain.
    after = AuditRecord.objects.get(pk=unknown.pk)
    assert after.status == AuditStatus.UNKNOWN
    assert after.record_hash == before.record_hash == record_hash_compute(after)
    assert after.trunk_username == ""
    assert audit_chain_verify().ok


def test_not_created_records_no_username(unknown, adam):
    event = audit_unknown_resolve(
        actor=adam, record=unknown, created=False, username="CT999999", note="Nothing there"
    )
    assert event.data["created"] is False
    assert event.trunk_username == event.data["trunk_username"] == ""


def test_resolving_twice_is_refused_and_names_the_first_resolution(unknown, mallory, adam):
    audit_unknown_resolve(
        actor=mallory, record=unknown, created=True, username="CT123456", note="Found it"
    )
    with pytest.raises(Conflict, match=r"already resolved as created \(CT123456\) by mallory"):
        audit_unknown_resolve(
            actor=adam, record=unknown, created=False, username=None, note="Not there"
        )
    assert AuditRecord.objects.filter(kind=AuditKind.OUTCOME_RESOLVED).count() == 1


@pytest.mark.parametrize(
    "username",
    [
        "",
        "CT12345",
        "CT1234567",
        "XX123456",
        "CT12345a",
        "CT 123456",
        "CT\uff11\uff12\uff13\uff14\uff15\uff16",
    ],
)
def test_a_created_resolution_needs_a_ct_username(unknown, mallory, username):
    with pytest.raises(InvalidInput, match="CT and 6 digits") as caught:
        audit_unknown_resolve(
            actor=mallory, record=unknown, created=True, username=username, note="Found"
        )
    assert caught.value.field == "username"
    assert not AuditRecord.objects.filter(kind=AuditKind.OUTCOME_RESOLVED).exists()


def test_a_resolution_needs_a_note(unknown, mallory):
    with pytest.raises(InvalidInput, match="how you checked"):
        audit_unknown_resolve(
            actor=mallory, record=unknown, created=False, username=None, note="  \x00 "
        )


@pytest.mark.parametrize("who", ["alice", "bob", "brenda", "charlie"])
def test_only_managers_of_the_attempts_tenant_may_resolve(unknown, request, who):
    with pytest.raises(NotPermitted):
        audit_unknown_resolve(
            actor=request.getfixturevalue(who),
            record=unknown,
            created=False,
            username=None,
            note="Not there",
        )
    assert not AuditRecord.objects.filter(kind=AuditKind.OUTCOME_RESOLVED).exists()


def test_a_superuser_may_resolve_any_tenants_attempt(unknown, root):
    event = audit_unknown_resolve(
        actor=root, record=unknown, created=False, username=None, note="Checked"
    )
    assert event.actor_username == "root"


@pytest.mark.parametrize("status", ["succeeded", "failed", "pending"])
def test_only_unknown_outcomes_can_be_resolved(tenant_a, alice, mallory, status):
    record = audit_attempt(tenant=tenant_a, actor=alice, status=status)
    with pytest.raises(InvalidInput, match="outcome is unknown"):
        audit_unknown_resolve(
            actor=mallory, record=record, created=False, username=None, note="Checked"
        )


# --- The pages -----------------------------------------------------------------------------------


def test_a_manager_resolves_from_the_detail_page_and_sees_it_there_and_in_the_list(
    client, unknown, mallory
):
    client.force_login(mallory)
    page = client.get(_detail_url(unknown)).content.decode()
    assert "Resolve this outcome" in page
    assert f'action="{_resolve_url(unknown)}"' in page
    listing = client.get(LIST).content.decode()
    assert 'class="status-unknown row-unknown"' in listing

    response = client.post(
        _resolve_url(unknown),
        {"outcome": "created", "username": "ct654321", "note": "Seen in the account\nat 10:05"},
    )
    assert response.status_code == 302
    assert response["Location"] == _detail_url(unknown)

    page = client.get(_detail_url(unknown)).content.decode()
    event = AuditRecord.objects.get(kind=AuditKind.OUTCOME_RESOLVED)
    assert "Created: the trunk is <strong>CT654321</strong>" in page
    assert "resolved by mallory" in page
    assert "Seen in the account<br>at 10:05" in page
    assert f'<a href="{_detail_url(event)}">#{event.chain_seq}</a>' in page
    assert "Resolve this outcome" not in page

    listing = client.get(LIST).content.decode()
    assert 'class="status-unknown row-resolved"' in listing
    assert "row-unknown" not in listing
    assert (
        '<span class="badge badge-resolved">Resolved</span> <span class="resolution">created CT654321</span>'
        in listing
    )
    # The resolution event is in the log too, and its page points back at the attempt.
    event_page = client.get(_detail_url(event)).content.decode()
    assert f'Resolution of <a href="{_detail_url(unknown)}">#{unknown.chain_seq}</a>' in event_page


def test_htmx_resolution_swaps_only_the_resolution_card(client, unknown, mallory):
    client.force_login(mallory)
    response = client.post(
        _resolve_url(unknown),
        {"outcome": "not_created", "username": "", "note": "No such trunk"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card resolution" id="resolution"')
    assert "<html" not in html
    assert "Not created: no trunk was made by this attempt" in html


def test_an_invalid_resolution_shows_inline_errors_and_records_nothing(client, unknown, mallory):
    client.force_login(mallory)
    response = client.post(_resolve_url(unknown), {"outcome": "created", "username": "CT12"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "CT and 6 digits" in html
    assert "This field is required." in html  # the note
    assert 'aria-invalid="true"' in html
    assert not AuditRecord.objects.filter(kind=AuditKind.OUTCOME_RESOLVED).exists()


def test_resolving_twice_from_the_page_is_refused_with_a_clear_message(
    client, unknown, mallory, adam
):
    client.force_login(mallory)
    client.post(_resolve_url(unknown), {"outcome": "not_created", "note": "Not there"})
    client.force_login(adam)
    response = client.post(
        _resolve_url(unknown), {"outcome": "created", "username": "CT111111", "note": "There"}
    )
    html = response.content.decode()
    assert response.status_code == 409
    assert "already resolved as not created by mallory" in html
    assert "Not created: no trunk was made by this attempt" in html
    assert AuditRecord.objects.filter(kind=AuditKind.OUTCOME_RESOLVED).count() == 1


@pytest.mark.parametrize(("who", "status"), [("brenda", 404), ("alice", 403), ("charlie", 403)])
def test_other_tenants_managers_and_staff_cannot_resolve(client, unknown, request, who, status):
    client.force_login(request.getfixturevalue(who))
    response = client.post(_resolve_url(unknown), {"outcome": "not_created", "note": "x"})
    assert response.status_code == status
    assert not AuditRecord.objects.filter(kind=AuditKind.OUTCOME_RESOLVED).exists()


def test_resolve_takes_only_post(client, unknown, mallory):
    client.force_login(mallory)
    assert client.get(_resolve_url(unknown)).status_code == 405


def test_a_resolved_attempt_is_no_longer_in_the_forms_warning(
    unknown, mallory, tenant_a, django_capture_on_commit_callbacks
):
    from trunks.provisioning.selectors import trunk_attempts_unknown_recent

    assert trunk_attempts_unknown_recent(tenant=tenant_a) == [unknown]
    # The cached list is dropped when the resolution commits (the test's own transaction never
    # does: its commit callbacks are run here).
    with django_capture_on_commit_callbacks(execute=True):
        audit_unknown_resolve(
            actor=mallory, record=unknown, created=False, username=None, note="No"
        )
    assert trunk_attempts_unknown_recent(tenant=tenant_a) == []


def test_the_list_costs_the_same_queries_however_many_rows_are_resolved(
    client, tenant_a, alice, mallory
):
    client.force_login(mallory)

    def list_queries() -> int:
        RESULTS.clear()  # the page rendered, not kept (trunks.audit.rendered)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST).status_code == 200
        return len(queries)

    first = audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
    audit_unknown_resolve(actor=mallory, record=first, created=False, username=None, note="No")
    list_queries()  # Warm the briefly cached "Who" menu, so both counts are of the same page.
    one = list_queries()
    for i in range(8):
        record = audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
        audit_unknown_resolve(
            actor=mallory, record=record, created=True, username=f"CT00000{i}", note="Yes"
        )
    many = list_queries()
    assert many == one
    assert client.get(LIST).content.decode().count("badge-resolved") == 9
