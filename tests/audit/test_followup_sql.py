"""The audit page's follow-up annotations (resolved / retried) are compiled once per database
(issue 17), to exactly the SQL the expressions compile to in the page's own query."""

import pytest

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
