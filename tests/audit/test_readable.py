"""The audit log reads like a person wrote it (issue 15): per-tenant numbers, times to the second,
admin events that say whom they affected, before → after details, what became of unknown
outcomes, a too-short search explained, and the chart's days leading to their records."""

import re
from datetime import timedelta

from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import audit_attempt
from trunks.audit.columns import data_items, event_summary
from trunks.audit.rendered import RESULTS
from trunks.audit.writer import audit_event_record
from trunks.models import AuditKind, AuditRecord, AuditStatus
from trunks.provisioning.selectors import trunk_attempts_unknown_recent

LIST = reverse("audit:list")
CHART = reverse("audit:chart")
HX = {"HX-Request": "true"}


def _rows(response):
    return [row for _record, row, _url in response.context["rows"]]


def test_a_tenants_records_are_numbered_by_their_place_in_its_chain_not_the_global_id(
    client, brenda, tenant_a, tenant_b, alice, bob
):
    for _ in range(3):
        audit_attempt(tenant=tenant_a, actor=alice)
    first_b = audit_attempt(tenant=tenant_b, actor=bob)
    second_b = audit_attempt(tenant=tenant_b, actor=bob)
    assert first_b.pk > 1  # A's records come first in the table
    client.force_login(brenda)
    response = client.get(LIST)
    html = response.content.decode()
    assert [row["number_text"] for row in _rows(response)] == ["#2", "#1"]
    url = reverse("audit:detail", args=[second_b.pk])
    assert f'<a href="{url}">#2</a>' in html
    assert f">#{second_b.pk}<" not in html
    detail = client.get(url).content.decode()
    assert "Bravo Networks #2" in detail
    assert "Database id" not in detail  # the global id is for superusers only


def test_times_read_to_the_second_with_the_time_zone(client, mallory, tenant_a, alice):
    record = audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
    client.force_login(mallory)
    [row] = _rows(client.get(LIST))
    local = timezone.localtime(record.started_at)
    assert row["when_text"] == f"{local.day} {local:%b %Y %H:%M:%S} {local.tzname()}"
    detail = client.get(reverse("audit:detail", args=[record.pk])).content.decode()
    assert row["when_text"] in detail
    shown = re.sub(r"<[^>]*>", " ", detail)  # the text, not the machine-readable attributes
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", shown), "no microseconds"


def test_admin_events_say_whom_they_affected_in_the_list_and_on_their_page(
    client, mallory, tenant_a
):
    events = [
        (AuditKind.MEMBER_ADDED, {"username": "jo", "role": "staff", "user_created": False}),
        (AuditKind.MEMBER_ROLE_CHANGED, {"username": "jo", "role": ["staff", "manager"]}),
        (AuditKind.MEMBER_REMOVED, {"username": "jo", "role": "manager"}),
        (AuditKind.KEY_REPLACED, {"fingerprint": "••••9876"}),
        (AuditKind.TENANT_UPDATED, {"changes": {"name": ["Alpha", "Alpha Telecom"]}}),
    ]
    for kind, data in events:
        audit_event_record(kind=kind, tenant=tenant_a, actor=mallory, data=data)
    client.force_login(mallory)
    response = client.get(LIST)
    descriptions = [row["description"] for row in _rows(response)][::-1]
    assert descriptions == [
        "Member jo added as staff",
        "Member jo: staff → manager",
        "Member jo removed (was manager)",
        "API key replaced (now ••••9876)",
        "Tenant changed: name Alpha → Alpha Telecom",
    ]
    role_change = AuditRecord.objects.get(kind=AuditKind.MEMBER_ROLE_CHANGED)
    page = client.get(reverse("audit:detail", args=[role_change.pk])).content.decode()
    assert "Member jo: staff → manager" in page
    assert "<dt>Role</dt><dd>staff → manager</dd>" in page
    assert "[&quot;staff&quot;" not in page and '["staff"' not in page


def test_changes_read_before_to_after_for_any_kind_never_as_json():
    data = {
        "changes": {
            "caller_id_number": ["61298765432", "61412345678"],
            "enabled": [True, False],
            "description": ["", "Front desk"],
        },
        "via": "command line",
    }
    assert list(data_items(data)) == [
        ("Caller ID number", "02 9876 5432 → 0412 345 678"),
        ("Enabled", "yes → no"),
        ("Description", "— → Front desk"),
        ("Done from", "command line"),
    ]
    # Kinds another change records (issue 13's trunk changes) read sensibly already.
    assert (
        event_summary("trunk_updated", {"changes": {"description": ["A", "B"]}}, "CT123456")
        == "Trunk settings changed: CT123456, description A → B"
    )
    assert event_summary("trunk_suspended", {}, "CT123456") == "Trunk suspended: CT123456"
    nested = dict(data_items({"numbers": [{"number": "61298765432", "label": "HQ"}]}))
    assert "{" not in nested["Numbers"] and "02 9876 5432" in nested["Numbers"]


def _resolve(tenant, actor, attempt, *, created, username=""):
    return audit_event_record(
        kind=AuditKind.OUTCOME_RESOLVED,
        tenant=tenant,
        actor=actor,
        data={"attempt": str(attempt.uuid), "created": created, "trunk_username": username},
        related=attempt,
        trunk_username=username,
    )


def test_a_resolved_unknown_shows_its_resolution_in_its_row(client, mallory, tenant_a, alice):
    created = audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="One")
    not_created = audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="Two")
    _resolve(tenant_a, mallory, created, created=True, username="CT123456")
    _resolve(tenant_a, mallory, not_created, created=False)
    client.force_login(mallory)
    html = client.get(LIST, {"status": "unknown"}).content.decode()
    assert 'Resolved</span> <span class="resolution">created CT123456</span>' in html
    assert 'Resolved</span> <span class="resolution">not created</span>' in html
    assert "row-unknown" not in html


def test_an_unknown_retried_successfully_is_handled_in_the_log_and_the_forms_warning(
    client, mallory, tenant_a, alice
):
    handled = audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="Done")
    audit_attempt(tenant=tenant_a, actor=alice, related=handled, trunk_username="CT654321")
    still_open = audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="Open")
    audit_attempt(tenant=tenant_a, actor=alice, status="failed", related=still_open)

    warned = trunk_attempts_unknown_recent(tenant=tenant_a)
    assert [r.pk for r in warned] == [still_open.pk]
    client.force_login(mallory)
    rows = {record.pk: marks for record, marks in _marks(client.get(LIST, {"status": "unknown"}))}
    assert "Handled" in rows[handled.pk] and "CT654321" in rows[handled.pk]
    assert "Resolve" in rows[still_open.pk]
    detail = client.get(reverse("audit:detail", args=[handled.pk])).content.decode()
    assert "Handled:" in detail and "CT654321" in detail


def _marks(response):
    from trunks.audit.views import _unknown_marks

    return [
        (record, _unknown_marks(record, url)[1]) for record, _row, url in response.context["rows"]
    ]


def test_status_badges_never_wrap(client, mallory):
    css = (
        __import__("pathlib").Path(__file__).resolve().parents[2] / "static/css/portal.css"
    ).read_text()
    assert re.search(r"\.badge \{[^}]*white-space: nowrap", css)


def test_a_search_shorter_than_the_minimum_says_so_through_htmx_too(
    client, mallory, tenant_a, alice
):
    audit_attempt(tenant=tenant_a, actor=alice, description="Reception")
    client.force_login(mallory)
    page = client.get(LIST).content.decode()
    # The browser must not hold a short search back silently (minlength): the server answers.
    assert re.search(r'<form class="card audit-filters"[^>]* novalidate', page)
    fragment = client.get(LIST, {"q": "re"}, headers=HX).content.decode()
    assert "Type at least 3 characters to search." in fragment
    assert "The records below are not filtered by it." in fragment


def test_a_day_in_the_chart_leads_to_that_days_records(client, mallory, tenant_a, alice):
    today = timezone.localdate()
    audit_attempt(tenant=tenant_a, actor=alice, status="failed")
    audit_attempt(tenant=tenant_a, actor=alice, at=timezone.now() - timedelta(days=3))
    client.force_login(mallory)
    chart = client.get(CHART, {"status": "failed"}, headers=HX).content.decode()
    day = today.isoformat()
    link = f'href="{LIST}?status=failed&amp;date_from={day}&amp;date_to={day}"'
    assert link in chart
    assert f'data-day="{day}"' in chart
    three_days_ago = (today - timedelta(days=3)).isoformat()
    assert f'data-day="{three_days_ago}"' not in chart  # filtered out: no bar, no link
    rows = _rows(client.get(LIST, {"date_from": day, "date_to": day}))
    assert len(rows) == 1


def test_a_page_of_events_and_handled_unknowns_costs_what_a_page_of_attempts_does(
    client, mallory, tenant_a, alice
):
    audit_attempt(tenant=tenant_a, actor=alice)
    client.force_login(mallory)
    from django.db import connection

    client.get(LIST)  # the shared caches (people, chart) filled, as for the second request
    RESULTS.clear()  # both pages rendered, not kept (trunks.audit.rendered)
    with CaptureQueriesContext(connection) as plain:
        client.get(LIST)
    for n in range(6):
        unknown = audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
        if n % 2:
            _resolve(tenant_a, mallory, unknown, created=False)
        else:
            audit_attempt(tenant=tenant_a, actor=alice, related=unknown, trunk_username="CT111111")
        audit_event_record(
            kind=AuditKind.MEMBER_ROLE_CHANGED,
            tenant=tenant_a,
            actor=mallory,
            data={"username": f"u{n}", "role": ["staff", "manager"]},
        )
    with CaptureQueriesContext(connection) as mixed:
        client.get(LIST)
    assert len(mixed) == len(plain), [q["sql"][:200] for q in mixed.captured_queries]


def test_attempts_the_portal_held_back_are_not_sent_and_filterable(
    client, mallory, tenant_a, alice
):
    audit_attempt(tenant=tenant_a, actor=alice, status="not_sent", error_category="rate_limited")
    audit_attempt(tenant=tenant_a, actor=alice, status="failed", upstream_status=429)
    client.force_login(mallory)
    rows = _rows(client.get(LIST, {"status": AuditStatus.NOT_SENT}))
    assert [row["status_text"] for row in rows] == ["Not sent"]
    chart = client.get(CHART, headers=HX).content.decode()
    assert "bar-not_sent" in chart and "Not sent" in chart
