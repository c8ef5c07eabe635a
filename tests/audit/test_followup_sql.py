"""The audit page's follow-up annotations (resolved / retried) are compiled once per database
(issue 17), to exactly the SQL the expressions compile to in the page's own query."""

import pytest
from django.db import connections

from trunks.audit import selectors
from trunks.audit.paging import audit_order
from trunks.models import AuditRecord, AuditStatus


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filters", [{}, {"status": AuditStatus.UNKNOWN}, {"tenant_id__in": [1, 2]}]
)
def test_the_compiled_annotations_are_the_expressions_sql(filters):
    compiled = selectors._followup_sql("default")
    assert compiled is not None, "the compiled form fell back to the expressions"
    base = audit_order(AuditRecord.objects.filter(**filters), sort="newest")
    fast = base.annotate(**compiled)[:51]
    slow = base.annotate(**selectors._followup_annotations())[:51]
    slow_sql, slow_params = slow.query.get_compiler("default").as_sql()
    fast_sql, fast_params = fast.query.get_compiler("default").as_sql()
    for raw in compiled.values():
        # The same SQL as the expression's in the page's query (RawSQL adds brackets round it).
        assert raw.sql in slow_sql and f"({raw.sql})" in fast_sql
    assert [str(p) for p in fast_params] == [str(p) for p in slow_params]
    assert list(fast.values_list("id", "resolution_username", "retried_as")) == list(
        slow.values_list("id", "resolution_username", "retried_as")
    )


@pytest.mark.django_db
def test_the_follow_up_subqueries_read_a_records_follow_ups_not_every_attempt():
    """SQLite, without statistics, walked `audit_kind` (every trunk attempt, in order) for each
    unknown row on a page; the follow-ups index finds one record's follow-ups of one kind in order."""
    connection = connections["default"]
    if connection.vendor != "sqlite":
        pytest.skip("the plan checked is SQLite's (PostgreSQL plans from its statistics)")
    page = audit_order(selectors.audit_with_resolution(AuditRecord.objects.all()), sort="newest")
    sql, params = page[:51].query.get_compiler("default").as_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = [row[-1] for row in cursor.fetchall()]
    subqueries = [step for step in plan if step.startswith("SEARCH U0")]
    assert len(subqueries) == 2, plan
    assert all(
        "USING INDEX audit_related_kind (related_id=? AND kind=?)" in s for s in subqueries
    ), plan
