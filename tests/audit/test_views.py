"""The audit log pages: who sees what, filters, keyset pages, chart, detail, exports, admin."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from tests.factories import audit_attempt
from trunks.audit.paging import AUDIT_PAGE_SIZE
from trunks.audit.rendered import RESULTS
from trunks.audit.writer import audit_event_record
from trunks.models import AuditKind, AuditRecord

LIST = reverse("audit:list")
CHART = reverse("audit:chart")
CSV_URL = reverse("audit:export-csv")
JSONL_URL = reverse("audit:export-jsonl")


def _csv_rows(response):
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def _jsonl_rows(response):
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in text.splitlines() if line]


def _ids_on_page(response) -> list[int]:
    return [row[0].pk for row in response.context["rows"]]


def _numbers_on_page(response) -> list[int]:
    return [row[0].chain_seq for row in response.context["rows"]]


@pytest.fixture
def two_tenants_log(tenant_a, tenant_b, alice, bob):
    a1 = audit_attempt(tenant=tenant_a, actor=alice, description="Alpha reception")
    a2 = audit_attempt(tenant=tenant_a, actor=alice, status="failed", description="Alpha sales")
    b1 = audit_attempt(tenant=tenant_b, actor=bob, description="Bravo warehouse")
    return {"a": [a1, a2], "b": [b1]}


# --- Who sees what -------------------------------------------------------------------------------


def test_manager_sees_only_their_tenants_records(client, mallory, two_tenants_log):
    client.force_login(mallory)
    response = client.get(LIST)
    assert response.status_code == 200
    assert set(_ids_on_page(response)) == {r.pk for r in two_tenants_log["a"]}
    assert b"Bravo warehouse" not in response.content


def test_manager_of_b_sees_nothing_of_a_in_list_detail_export_or_chart(
    client, brenda, two_tenants_log
):
    client.force_login(brenda)
    page = client.get(LIST)
    assert _ids_on_page(page) == [two_tenants_log["b"][0].pk]
    assert b"Alpha" not in page.content
    assert client.get(CHART).context["chart"].total == 1  # only B's attempt today
    for record in two_tenants_log["a"]:
        assert client.get(reverse("audit:detail", args=[record.pk])).status_code == 404
    rows = _csv_rows(client.get(CSV_URL))
    assert [int(r["No."]) for r in rows] == [two_tenants_log["b"][0].chain_seq]
    # Asking for tenant A by id is refused as an invalid choice, not answered with A's data.
    tenant_a_id = two_tenants_log["a"][0].tenant_id
    refused = client.get(CSV_URL, {"tenant": tenant_a_id})
    assert refused.status_code == 400
    assert b"Alpha" not in refused.content
    filtered = client.get(LIST, {"tenant": tenant_a_id})
    assert b"Some filters were not applied" in filtered.content
    assert _ids_on_page(filtered) == [two_tenants_log["b"][0].pk]


def test_superuser_sees_every_tenant(client, root, two_tenants_log):
    client.force_login(root)
    response = client.get(LIST)
    assert len(_ids_on_page(response)) == 3


@pytest.mark.parametrize("who", ["alice", "bob", "charlie"])
def test_staff_and_outsiders_are_refused(client, request, who, two_tenants_log):
    client.force_login(request.getfixturevalue(who))
    assert client.get(LIST).status_code == 403
    assert client.get(CSV_URL).status_code == 403
    assert client.get(reverse("audit:detail", args=[two_tenants_log["a"][0].pk])).status_code == 403


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_detail_of_a_missing_record_is_404(client, mallory):
    client.force_login(mallory)
    assert client.get(reverse("audit:detail", args=[999999])).status_code == 404


# --- Filters -------------------------------------------------------------------------------------


@pytest.fixture
def busy_log(tenant_a, alice, adam):
    now = timezone.now()
    return {
        "alice_failed_last_week": [
            audit_attempt(
                tenant=tenant_a,
                actor=alice,
                status="failed",
                at=now - timedelta(days=d),
                error_category="validation",
                error_message="password: too short",
                upstream_status=422,
            )
            for d in (2, 3, 5)
        ],
        "alice_failed_long_ago": audit_attempt(
            tenant=tenant_a, actor=alice, status="failed", at=now - timedelta(days=40)
        ),
        "alice_ok": audit_attempt(
            tenant=tenant_a, actor=alice, at=now - timedelta(days=3), trunk_username="CT5550001"
        ),
        "adam_failed": audit_attempt(
            tenant=tenant_a, actor=adam, status="failed", at=now - timedelta(days=3)
        ),
        "unknown": audit_attempt(
            tenant=tenant_a,
            actor=adam,
            status="unknown",
            caller_id_number="61298765432",
            description="Boardroom fax",
            at=now - timedelta(days=1),
        ),
        "event": audit_event_record(
            kind=AuditKind.MEMBER_ADDED, tenant=tenant_a, actor=adam, data={"member": "alice"}
        ),
    }


def _last_week():
    today = timezone.localdate()
    return (today - timedelta(days=7)).isoformat(), today.isoformat()


def test_filters_one_staff_members_failed_attempts_last_week_and_exports_them(
    client, mallory, alice, busy_log
):
    client.force_login(mallory)
    start, end = _last_week()
    params = {"actor": alice.pk, "status": "failed", "date_from": start, "date_to": end}
    page = client.get(LIST, params)
    newest_first = sorted(busy_log["alice_failed_last_week"], key=lambda r: r.started_at)[::-1]
    assert _ids_on_page(page) == [r.pk for r in newest_first]

    response = client.get(CSV_URL, params)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-all-tenants-{start}-to-{end}.csv"'
    )
    rows = _csv_rows(response)
    assert [int(r["No."]) for r in rows] == _numbers_on_page(page)
    assert {r["Status"] for r in rows} == {"failed"}
    assert {r["Who"] for r in rows} == {"alice"}
    assert rows[0]["Outcome"] == "HTTP 422 · validation: password: too short"
    assert rows[0]["Caller ID"] == "0412 345 678"

    lines = _jsonl_rows(client.get(JSONL_URL, params))
    assert [r["number"] for r in lines] == _numbers_on_page(page)
    assert list(lines[0]) == [key for key, _h in page.context["columns"]]


def test_export_is_named_after_the_tenant(client, mallory, tenant_a, busy_log):
    client.force_login(mallory)
    response = client.get(JSONL_URL, {"tenant": tenant_a.pk, "date_from": "2026-01-01"})
    assert response["Content-Disposition"] == (
        'attachment; filename="audit-alpha-from-2026-01-01.jsonl"'
    )
    assert response["Content-Type"].startswith("application/x-ndjson")


def test_filter_by_kind_shows_admin_events(client, mallory, busy_log):
    client.force_login(mallory)
    page = client.get(LIST, {"kind": AuditKind.MEMBER_ADDED})
    assert _ids_on_page(page) == [busy_log["event"].pk]
    assert b"Member added" in page.content


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("CT5550001", "alice_ok"),
        ("ct555", "alice_ok"),
        ("boardroom", "unknown"),
        ("0298765432", "unknown"),
        ("02 9876 5432", "unknown"),
        ("+61 2 9876", "unknown"),
        ("61298765432", "unknown"),
    ],
)
def test_free_text_searches_username_description_and_caller_id(
    client, mallory, busy_log, text, key
):
    client.force_login(mallory)
    page = client.get(LIST, {"q": text})
    assert _ids_on_page(page) == [busy_log[key].pk]


def test_date_range_is_inclusive_in_local_days(client, mallory, busy_log):
    client.force_login(mallory)
    day = timezone.localdate(busy_log["unknown"].started_at).isoformat()
    page = client.get(LIST, {"date_from": day, "date_to": day})
    assert busy_log["unknown"].pk in _ids_on_page(page)
    assert busy_log["alice_failed_long_ago"].pk not in _ids_on_page(page)


def test_an_end_date_before_the_start_is_explained_and_exports_nothing(client, mallory, busy_log):
    client.force_login(mallory)
    params = {"date_from": "2026-11-20", "date_to": "2026-11-01", "status": "failed"}
    page = client.get(LIST, params)
    assert page.status_code == 200
    assert b"The end date is before the start date." in page.content
    # The valid filter still applies.
    assert all(row[0].status == "failed" for row in page.context["rows"])
    export = client.get(CSV_URL, params)
    assert export.status_code == 400
    assert b"The end date is before the start date." in export.content


def test_a_search_shorter_than_three_characters_is_explained(client, mallory, busy_log):
    client.force_login(mallory)
    page = client.get(LIST, {"q": "CT"})
    assert b"Type at least 3 characters to search." in page.content
    assert client.get(CSV_URL, {"q": "CT"}).status_code == 400


def test_garbage_filter_values_never_500(client, mallory, busy_log):
    client.force_login(mallory)
    for params in (
        {"actor": "abc"},
        {"status": "deleted"},
        {"date_from": "yesterday"},
        {"q": "x" * 500},
        {"after": "not-a-cursor"},
        {"before": "99999999999999999999999_1"},
        {"sort": "sideways"},
    ):
        assert client.get(LIST, params).status_code == 200, params


def test_unknown_attempts_are_highlighted(client, mallory, busy_log):
    client.force_login(mallory)
    html = client.get(LIST).content.decode()
    assert 'class="status-unknown row-unknown"' in html
    assert "Unknown outcome" in html


# --- htmx and pagination --------------------------------------------------------------------------


def test_htmx_request_gets_only_the_results_container(client, mallory, busy_log):
    client.force_login(mallory)
    response = client.get(LIST, {"status": "failed"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-results"')
    assert "<html" not in html
    full = client.get(LIST, {"status": "failed"}).content.decode()
    assert 'hx-push-url="true"' in full
    assert 'hx-target="#audit-results"' in full


@pytest.fixture
def long_log(tenant_a, alice):
    start = timezone.now() - timedelta(hours=5)
    # Two records share each timestamp: the keyset must order by id within a second.
    return [
        audit_attempt(tenant=tenant_a, actor=alice, at=start + timedelta(seconds=i // 2))
        for i in range(2 * AUDIT_PAGE_SIZE + 20)
    ]


def test_keyset_pages_walk_the_whole_log_both_ways(client, mallory, long_log):
    client.force_login(mallory)
    expected = sorted((r.pk for r in long_log), reverse=True)  # newest first (same seconds: id)
    seen, pages, response = [], [], client.get(LIST)
    while True:
        pages.append(response)
        seen += _ids_on_page(response)
        next_query = response.context["next_query"]
        if not next_query:
            break
        assert "after=" in next_query
        response = client.get(f"{LIST}?{next_query}")
    assert seen == expected
    assert [len(_ids_on_page(p)) for p in pages] == [AUDIT_PAGE_SIZE, AUDIT_PAGE_SIZE, 20]
    assert pages[0].context["previous_query"] is None
    # Back from the last page: the same middle page, then the first (with no "Newer" link).
    back = client.get(f"{LIST}?{pages[2].context['previous_query']}")
    assert _ids_on_page(back) == _ids_on_page(pages[1])
    first = client.get(f"{LIST}?{back.context['previous_query']}")
    assert _ids_on_page(first) == _ids_on_page(pages[0])
    assert first.context["previous_query"] is None


def test_oldest_first_sort_pages_too(client, mallory, long_log):
    client.force_login(mallory)
    page = client.get(LIST, {"sort": "oldest"})
    assert _ids_on_page(page) == sorted(r.pk for r in long_log)[:AUDIT_PAGE_SIZE]
    second = client.get(f"{LIST}?{page.context['next_query']}")
    assert "sort=oldest" in page.context["next_query"]
    assert (
        _ids_on_page(second)
        == sorted(r.pk for r in long_log)[AUDIT_PAGE_SIZE : 2 * AUDIT_PAGE_SIZE]
    )
    assert b"Newer" in second.content


def test_pages_keep_the_filters_in_the_url(client, mallory, long_log):
    client.force_login(mallory)
    page = client.get(LIST, {"status": "succeeded", "q": "reception"})
    assert "status=succeeded" in page.context["next_query"]
    assert "q=reception" in page.context["next_query"]
    assert "status=succeeded" in page.context["export_query"]
    assert "after" not in page.context["export_query"]


def _count_queries(client, url, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_the_log_or_the_depth(
    client, mallory, tenant_a, alice, django_assert_max_num_queries
):
    client.force_login(mallory)
    audit_attempt(tenant=tenant_a, actor=alice)
    small = _count_queries(client, LIST, django_assert_max_num_queries)
    for _ in range(2 * AUDIT_PAGE_SIZE + 5):
        audit_attempt(tenant=tenant_a, actor=alice, status="failed")
    with django_assert_max_num_queries(small):
        first = client.get(LIST)
    with django_assert_max_num_queries(small):
        second = client.get(f"{LIST}?{first.context['next_query']}")
    with django_assert_max_num_queries(small):
        client.get(f"{LIST}?{second.context['next_query']}")
    filtered = f"{LIST}?actor={alice.pk}&status=failed&q=reception&tenant={tenant_a.pk}"
    with django_assert_max_num_queries(small + 2):  # validating the chosen tenant and actor
        client.get(filtered)


def test_no_count_query_on_the_list(client, mallory, long_log):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(mallory)
    with CaptureQueriesContext(connection) as ctx:
        client.get(LIST)
        client.get(CHART)
    audit_queries = [q["sql"] for q in ctx.captured_queries if "trunks_auditrecord" in q["sql"]]
    # The log's version (trunks.audit.rendered): its chains' heads and its pending attempts.
    versions = [sql for sql in audit_queries if "MAX(a.chain_seq)" in sql]
    reads = [sql for sql in audit_queries if sql not in versions]
    assert len(versions) == 1
    assert len(reads) == 2  # the page, and the chart's aggregate (its own fragment)
    assert not any("COUNT(*)" in sql for sql in reads)


# --- Chart ---------------------------------------------------------------------------------------


def test_chart_counts_attempts_per_day_by_status_and_honours_filters(client, mallory, busy_log):
    client.force_login(mallory)
    page = client.get(CHART)
    chart = page.context["chart"]
    # Trunk attempts in the last 30 days: three failed + ok + adam's failed + unknown (not the
    # 40-day-old one, not the admin event).
    assert chart.total == 6
    assert len(chart.days) == 30
    html = page.content.decode()
    # Its days are links (to the log filtered to that day), so it is a group, not an image.
    assert 'role="group"' in html and 'class="chart-day"' in html
    assert '<title id="chart-title">' in html
    assert '<desc id="chart-desc">' in html
    assert "Show the figures as a table" in html
    filtered = client.get(CHART, {"status": "failed"}).context["chart"]
    assert filtered.total == 4
    assert {b.status for b in filtered.bars} == {"failed"}
    three_days_ago = timezone.localdate() - timedelta(days=3)
    row = next(r for r in filtered.days if r["day"] == three_days_ago)
    assert dict(row["counts"])["Failed"] == 2


def test_chart_window_ends_on_the_filters_end_date(client, mallory, busy_log):
    client.force_login(mallory)
    end = timezone.localdate() - timedelta(days=35)
    chart = client.get(CHART, {"date_to": end.isoformat()}).context["chart"]
    assert chart.last_day == end
    assert chart.total == 1  # the 40-day-old failure


def _aggregates(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"]]


def test_list_page_loads_its_chart_as_a_fragment_that_follows_the_filters(
    client, mallory, busy_log
):
    client.force_login(mallory)
    page = client.get(LIST, {"status": "failed", "sort": "oldest", "after": "1_1"}).content.decode()
    # The table comes without the chart; the chart loads into its place, with the same filters
    # (not the paging or the order, which do not change it).
    assert 'hx-get="/audit/chart/?status=failed"' in page
    assert 'hx-trigger="load"' in page
    assert "<svg" not in page
    fragment = client.get(CHART, {"status": "failed"}, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert fragment.context["chart"].total == 4
    assert html.lstrip().startswith('<section class="card chart-card" id="audit-chart"')
    assert "<html" not in html
    # Without JavaScript, the same address is a page of its own.
    assert "<html" in client.get(CHART, {"status": "failed"}).content.decode()


def test_chart_counts_are_shared_briefly_and_dropped_when_a_record_is_written(
    client, mallory, tenant_a, alice, busy_log, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(mallory)
    client.get(LIST)  # the people menu is now cached too
    htmx = {"HX-Request": "true"}
    with CaptureQueriesContext(connection) as first:
        assert client.get(CHART, headers=htmx).context["chart"].total == 6
    with CaptureQueriesContext(connection) as again:
        assert client.get(CHART, headers=htmx).context["chart"].total == 6
    assert len(_aggregates(first)) == 1
    assert _aggregates(again) == []  # from the cache
    assert len(again.captured_queries) == len(first.captured_queries) - 1

    # Dropped when the write commits (the test's own transaction never does: its commit
    # callbacks are run here).
    with django_capture_on_commit_callbacks(execute=True):
        audit_attempt(tenant=tenant_a, actor=alice, status="failed")
    with CaptureQueriesContext(connection) as after_write:
        assert client.get(CHART, headers=htmx).context["chart"].total == 7
    assert len(_aggregates(after_write)) == 1


def test_a_superusers_tenant_menu_is_shared_and_follows_every_tenant_change(
    client, root, tenant_a, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import TenantFactory

    client.force_login(root)
    client.get(LIST)
    with CaptureQueriesContext(connection) as ctx:
        client.get(LIST)
    # The log's version reads each tenant's chain head (trunks.audit.rendered), not the menu.
    assert not any(
        '"trunks_tenant"' in q["sql"] and "MAX(a.chain_seq)" not in q["sql"]
        for q in ctx.captured_queries
    )
    with django_capture_on_commit_callbacks(execute=True):
        tenant_a.name = "Alpha renamed"
        tenant_a.save()
        added = TenantFactory(name="Zulu added")
    menu = client.get(LIST).content.decode()
    assert "Alpha renamed" in menu and f'<option value="{added.pk}">Zulu added</option>' in menu
    with django_capture_on_commit_callbacks(execute=True):
        added.delete()
    assert "Zulu added" not in client.get(LIST).content.decode()


def test_cached_chart_is_per_reader_scope(client, mallory, brenda, root, two_tenants_log):
    htmx = {"HX-Request": "true"}
    client.force_login(mallory)
    assert client.get(CHART, headers=htmx).context["chart"].total == 2
    client.force_login(brenda)
    assert client.get(CHART, headers=htmx).context["chart"].total == 1
    client.force_login(root)
    assert client.get(CHART, headers=htmx).context["chart"].total == 3


def test_chart_fragment_is_for_managers_only(client, alice, charlie, db):
    for who in (alice, charlie):
        client.force_login(who)
        assert client.get(CHART).status_code == 403


def test_page_query_count_is_the_same_for_every_filter_and_depth(
    client, mallory, tenant_a, alice, busy_log
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(mallory)
    from trunks.audit.paging import AuditCursor

    client.get(LIST)  # the people menu is now cached, as it is for 60 s in use
    counts = set()
    middle = AuditCursor.of(busy_log["alice_ok"])
    for params in (
        {},
        {"actor": alice.pk, "status": "failed", "tenant": tenant_a.pk, "q": "reception"},
        {"after": str(middle)},
        {"before": str(middle), "sort": "oldest"},
        {"date_from": "2026-01-01", "date_to": "2026-12-31", "kind": "trunk_create"},
    ):
        RESULTS.clear()  # each page rendered, as the first view after a write is
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(LIST, params).status_code == 200
        counts.add(len(ctx.captured_queries))
    assert len(counts) == 1, counts


def test_table_cells_and_menus_escape_what_people_typed(client, mallory, tenant_a, alice):
    audit_attempt(
        tenant=tenant_a,
        actor=alice,
        status="failed",
        description='<script>alert("x")</script> & co',
        error_message="<b>bold</b>",
    )
    alice.username = "alice<i>"
    alice.save()
    client.force_login(mallory)
    html = client.get(LIST, {"actor": alice.pk}).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    # The chosen person stays selected in the menu, their name escaped there too.
    assert f'<option value="{alice.pk}" selected>alice&lt;i&gt;</option>' in html
    assert 'class="status-failed"' in html


# --- Detail --------------------------------------------------------------------------------------


def test_detail_shows_everything_recorded_in_national_format(client, mallory, tenant_a, alice):
    first = audit_attempt(
        tenant=tenant_a, actor=alice, status="unknown", description="Level 3 reception"
    )
    retry = audit_attempt(tenant=tenant_a, actor=alice, related=first, trunk_username="CT1234567")
    client.force_login(mallory)
    html = client.get(reverse("audit:detail", args=[retry.pk])).content.decode()
    for expected in (
        "0412 345 678",
        "Reception desk phone",
        "CT1234567",
        "Alpha Telecom",
        "alice",
        f'Retry of <a href="{reverse("audit:detail", args=[first.pk])}">#{first.chain_seq}</a>',
        f"Position in Alpha Telecom's chain</dt><dd>{retry.chain_seq}",
        retry.record_hash,
        "The hash matches this record's content and links to the previous record.",
        str(retry.uuid),
    ):
        assert expected in html, expected
    assert "61412345678" not in html
    original = client.get(reverse("audit:detail", args=[first.pk])).content.decode()
    assert (
        f'Retried by <a href="{reverse("audit:detail", args=[retry.pk])}">#{retry.chain_seq}</a>'
        in original
    )
    # The retry created the trunk: the unknown outcome reads as handled.
    assert "Handled:" in original and "The outcome of this attempt is unknown" not in original
    assert "Level 3 reception" in original


def test_detail_of_a_pending_attempt_says_it_is_not_chained_yet(client, mallory, tenant_a, alice):
    pending = audit_attempt(tenant=tenant_a, actor=alice, status="pending")
    client.force_login(mallory)
    html = client.get(reverse("audit:detail", args=[pending.pk])).content.decode()
    assert "joins the chain once its outcome is recorded" in html


# --- Export safety ---------------------------------------------------------------------------------


def test_csv_cells_that_look_like_formulas_are_defused(client, mallory, tenant_a, alice):
    for text in ('=HYPERLINK("http://evil")', "+61 sum", "-2+3", "@SUM(A1)", "plain"):
        audit_attempt(tenant=tenant_a, actor=alice, description=text)
    client.force_login(mallory)
    rows = _csv_rows(client.get(CSV_URL))
    descriptions = {r["Description"] for r in rows}
    assert descriptions == {
        '\'=HYPERLINK("http://evil")',
        "'+61 sum",
        "'-2+3",
        "'@SUM(A1)",
        "plain",
    }
    # JSON Lines keeps the exact text: it is data, not a spreadsheet.
    assert '=HYPERLINK("http://evil")' in {
        r["description"] for r in _jsonl_rows(client.get(JSONL_URL))
    }


def test_export_of_an_empty_selection_is_just_the_header(client, brenda):
    client.force_login(brenda)
    text = b"".join(client.get(CSV_URL).streaming_content).decode()
    assert (
        text.strip()
        == "No.,When,Tenant,Who,Kind,Status,Trunk username,Caller ID,Description,Outcome"
    )


def test_export_holds_no_password(client, mallory, busy_log):
    client.force_login(mallory)
    body = b"".join(client.get(JSONL_URL).streaming_content).decode().lower()
    assert 'password"' not in body and "password:" not in body.replace("password: too short", "")


# --- Django admin ------------------------------------------------------------------------------------


def test_admin_shows_audit_records_read_only(client, root, busy_log):
    client.force_login(root)
    record = busy_log["alice_ok"]
    changelist = client.get(reverse("admin:trunks_auditrecord_changelist"))
    assert changelist.status_code == 200
    assert client.get(reverse("admin:trunks_auditrecord_add")).status_code == 403
    change_url = reverse("admin:trunks_auditrecord_change", args=[record.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b"<input" not in page.content.split(b'id="auditrecord_form"')[-1].split(b"</form>")[
        0
    ] or (b'type="text"' not in page.content)
    # A forged POST changes nothing.
    assert client.post(change_url, {"status": "failed"}).status_code == 403
    assert (
        client.get(reverse("admin:trunks_auditrecord_delete", args=[record.pk])).status_code == 403
    )
    assert AuditRecord.objects.get(pk=record.pk).status == "succeeded"


def test_chart_geometry_stacks_bars_and_labels_whole_numbers():
    from datetime import date

    from trunks.audit.chart import chart_build

    days = {date(2026, 11, d): {} for d in range(1, 31)}
    days[date(2026, 11, 30)] = {"succeeded": 3, "failed": 1}
    chart = chart_build(days)
    assert chart.total == 4
    assert [t["value"] for t in chart.ticks] == ["0", "2", "4"]
    bars = [b for b in chart.bars if b.day == date(2026, 11, 30)]
    assert [b.status for b in bars] == ["succeeded", "failed"]
    # Stacked: the failed segment sits on top of the succeeded one and reaches the top.
    assert float(bars[1].y) + float(bars[1].height) == pytest.approx(float(bars[0].y))
    assert float(bars[1].y) == pytest.approx(10)
    assert [label["text"] for label in chart.labels] == [
        "1 Nov",
        "8 Nov",
        "15 Nov",
        "22 Nov",
        "29 Nov",
    ]
    one = chart_build({date(2026, 11, 1): {"unknown": 1}})
    assert [t["value"] for t in one.ticks] == ["0", "1"]
    empty = chart_build({date(2026, 11, 1): {}})
    assert empty.bars == [] and empty.total == 0


# --- Export rows match the page's columns --------------------------------------------------------


def _spreadsheet_safe(value) -> str:
    """What a CSV cell must read: a leading apostrophe before what a spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def test_export_rows_are_the_columns_audit_row_gives_each_record(client, mallory, tenant_a, alice):
    from trunks.audit.columns import AUDIT_COLUMNS, audit_row

    audit_attempt(tenant=tenant_a, actor=alice, description="=HYPERLINK(1)", error_message="-2")
    audit_attempt(
        tenant=tenant_a,
        actor=None,
        status="failed",
        caller_id_number="not a number",
        description='+Zoë, "quoted"\nnew line',
        upstream_status=422,
        error_category="validation",
        error_message="@bad",
    )
    audit_attempt(tenant=tenant_a, actor=alice, status="failed", error_category="unreachable")
    audit_attempt(tenant=tenant_a, actor=alice, status="failed", upstream_status=500)
    audit_attempt(tenant=tenant_a, actor=alice, caller_id_number="61412345678")
    records = AuditRecord.objects.filter(tenant=tenant_a).order_by("-started_at", "-id")
    expected = [audit_row(record) for record in records]
    client.force_login(mallory)

    assert _jsonl_rows(client.get(JSONL_URL)) == expected
    headings = [heading for _key, heading in AUDIT_COLUMNS]
    assert _csv_rows(client.get(CSV_URL)) == [
        {heading: _spreadsheet_safe(row[key]) for key, heading in AUDIT_COLUMNS} for row in expected
    ]
    assert _csv_rows(client.get(CSV_URL))[-1]["Description"] == "'=HYPERLINK(1)"
    assert headings[0] == "No."


def test_a_large_export_comes_in_pieces_not_a_line_at_a_time(
    client, mallory, tenant_a, alice, monkeypatch
):
    from trunks.audit import export

    # Pieces of 8 KB instead of 64: the same buffering, shown on 40 records of ~400 bytes
    # (each record is written through the audit writer, ~10 ms) instead of 400.
    monkeypatch.setattr(export, "EXPORT_PIECE", 8 * 1024)
    for n in range(40):
        audit_attempt(tenant=tenant_a, actor=alice, description=f"Desk {n} " + "x" * 200)
    client.force_login(mallory)
    pieces = list(client.get(CSV_URL).streaming_content)
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode())))
    assert len(rows) == 41
    assert 1 < len(pieces) < 4  # a piece holds many lines


# --- Dates at the calendar's edge (issue 16) ----------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
        {"date_from": "1999-12-31"},
        {"date_to": "2100-01-01"},
    ],
    ids=["last-day", "first-day", "both", "just-before", "just-after"],
)
def test_a_date_at_the_calendars_edge_is_a_clear_message_not_500(
    client, mallory, two_tenants_log, query
):
    from trunks.audit.filters import DATE_RANGE_MESSAGE

    client.force_login(mallory)
    page = client.get(LIST, query)
    assert page.status_code == 200
    assert DATE_RANGE_MESSAGE in page.content.decode()
    assert client.get(CHART, query).status_code == 200
    for url in (CSV_URL, JSONL_URL):
        response = client.get(url, query)
        assert response.status_code < 500
        if isinstance(response, StreamingHttpResponse):
            b"".join(response.streaming_content)


def test_the_range_edges_themselves_are_accepted(client, mallory, two_tenants_log):
    from trunks.audit.filters import EARLIEST_DATE, LATEST_DATE

    client.force_login(mallory)
    query = {"date_from": EARLIEST_DATE.isoformat(), "date_to": LATEST_DATE.isoformat()}
    response = client.get(LIST, query)
    assert set(_ids_on_page(response)) == {r.pk for r in two_tenants_log["a"]}
