"""The audit log's results rendered once per what they show (trunks.audit.rendered): the same page
as a fresh rendering, every write to the log shown at once, nothing shared between readers of
different scopes, time zones or languages, and nothing per request shared between responses."""

import re

import pytest
from django.utils import timezone, translation

from tests.factories import audit_attempt
from tests.pages import per_request_values_blanked
from trunks.audit import rendered
from trunks.audit.selectors import audit_log_version
from trunks.audit.services import audit_unknown_resolve
from trunks.audit.writer import audit_attempt_finish, audit_event_record
from trunks.models import AuditKind, AuditStatus, Membership, Role

LIST = "/audit/"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def log(client, mallory, tenant_a, tenant_b, alice, bob):
    audit_attempt(tenant=tenant_a, actor=alice, description="Alpha reception")
    audit_attempt(tenant=tenant_b, actor=bob, status="failed", description="Bravo warehouse")
    client.force_login(mallory)
    rendered.RESULTS.clear()
    yield client
    rendered.RESULTS.clear()


def _page(client, query: str = "", **headers) -> str:
    response = client.get(LIST + query, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def _kept(client, query: str = "", **headers) -> str:
    """The page twice: the second is served from the kept results (checked)."""
    _page(client, query, **headers)
    kept = len(rendered.RESULTS._html)
    html = _page(client, query, **headers)
    assert kept and len(rendered.RESULTS._html) == kept, "the second view rendered them again"
    return html


@pytest.mark.parametrize("query", ["", "?status=failed&q=Bravo&sort=oldest", "?tenant={a}"])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_the_kept_results_are_the_results_rendered_afresh(
    log, monkeypatch, tenant_a, query, headers
):
    query = query.format(a=tenant_a.pk)
    kept = _kept(log, query, **headers)
    rendered.RESULTS.clear()
    monkeypatch.setattr(
        "trunks.audit.views.audit_results_html", lambda *, request, form, render: render()
    )
    fresh = _page(log, query, **headers)
    assert not rendered.RESULTS._html
    assert per_request_values_blanked(kept) == per_request_values_blanked(fresh)
    assert 'id="audit-results"' in kept


def test_a_new_attempt_shows_at_once_while_pending_and_when_final(log, tenant_a, alice):
    from trunks.audit.writer import audit_attempt_start

    assert "Charlie desk" not in _kept(log)
    pending = audit_attempt_start(
        tenant=tenant_a,
        actor=alice,
        request=None,
        data={"caller_id_number": "61412345678", "description": "Charlie desk"},
        submission_token="kept-results-1",
    )
    html = _page(log)
    assert "Charlie desk" in html and "badge-pending" in html
    _kept(log)
    audit_attempt_finish(record=pending, status=AuditStatus.FAILED, error_message="Refused here")
    html = _page(log)
    assert "Refused here" in html and "badge-pending" not in html


def test_a_resolution_and_an_event_show_at_once(log, tenant_a, alice, mallory):
    unknown = audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="Lost")
    html = _kept(log)
    assert "row-unknown" in html and "Resolve</a>" in html
    audit_unknown_resolve(actor=mallory, record=unknown, created=False, username=None, note="No")
    html = _kept(log)
    assert "row-unknown" not in html and "Resolved" in html and "not created" in html
    audit_event_record(
        kind=AuditKind.MEMBER_ROLE_CHANGED,
        tenant=tenant_a,
        actor=mallory,
        data={"username": "alice", "role": ["staff", "manager"]},
    )
    assert "Member role changed" in _page(log)


def test_each_reader_sees_their_own_tenants_at_once(log, client, root, mallory, brenda, tenant_b):
    assert "Bravo warehouse" not in _kept(log)
    client.force_login(brenda)
    html = _page(client)
    assert "Bravo warehouse" in html and "Alpha reception" not in html
    client.force_login(root)
    html = _page(client)
    assert "Bravo warehouse" in html and "Alpha reception" in html
    client.force_login(mallory)
    Membership.objects.create(user=mallory, tenant=tenant_b, role=Role.MANAGER)
    assert "Bravo warehouse" in _page(client)
    Membership.objects.filter(user=mallory).update(role=Role.STAFF)
    assert client.get(LIST).status_code == 403


def test_another_time_zone_or_language_is_rendered_for_itself(log, tenant_a, alice):
    when = timezone.now().replace(hour=3, minute=4, second=5, microsecond=0)
    audit_attempt(tenant=tenant_a, actor=alice, at=when, description="Timed")
    with timezone.override("UTC"):
        utc = _kept(log)
    with timezone.override("Asia/Kolkata"):
        kolkata = _page(log)
    assert "03:04:05 UTC" in utc and "08:34:05 IST" in kolkata
    assert "08:34:05" not in utc and "03:04:05" not in kolkata
    kept = len(rendered.RESULTS._html)
    with timezone.override("UTC"), translation.override("de"):
        _page(log)
    assert len(rendered.RESULTS._html) == kept + 1, "another language has a rendering of its own"


def test_per_request_values_are_never_shared_between_responses(log):
    first, second = _page(log), _kept(log)
    tokens = [re.findall(r'"x-csrftoken": "([^"]+)"', html) for html in (first, second)]
    nonces = [set(re.findall(r'nonce="([^"]+)"', html)) for html in (first, second)]
    assert all(tokens) and tokens[0] != tokens[1]
    assert all(nonces) and not nonces[0] & nonces[1]
    (kept,) = rendered.RESULTS._html.values()
    assert "csrf" not in kept.lower() and "nonce" not in kept


@pytest.mark.parametrize("query", ["?actor=1", "?job=0b7c7f32-8d3b-4a57-9a55-c1b1e5a1a111"])
def test_filters_that_can_change_without_a_write_are_rendered_each_time(log, query):
    _page(log, query)
    _page(log, query)
    assert not rendered.RESULTS._html


def test_filters_with_errors_are_rendered_each_time(log):
    assert "Some filters were not applied" in _page(log, "?date_from=not-a-date")
    assert not rendered.RESULTS._html


def test_the_version_changes_at_every_write_and_only_then(
    tenant_a, tenant_b, alice, bob, mallory, brenda, root
):
    from trunks.audit.writer import audit_attempt_start

    def versions():
        return {who: audit_log_version(user=who) for who in (mallory, brenda, root)}

    before = versions()
    assert versions() == before
    pending = audit_attempt_start(
        tenant=tenant_a, actor=alice, request=None, data={}, submission_token="version-1"
    )
    after_start = versions()
    assert after_start[mallory] != before[mallory] and after_start[root] != before[root]
    assert after_start[brenda] == before[brenda], "another tenant's write is not B's"
    unknown = audit_attempt_finish(record=pending, status=AuditStatus.UNKNOWN)
    after_finish = versions()
    assert after_finish[mallory] not in (before[mallory], after_start[mallory])
    audit_unknown_resolve(actor=mallory, record=unknown, created=False, username=None, note="No")
    after_resolution = versions()
    assert after_resolution[mallory] not in (
        before[mallory],
        after_start[mallory],
        after_finish[mallory],
    )
    audit_attempt(tenant=tenant_b, actor=bob)
    assert versions()[brenda] != after_resolution[brenda]
