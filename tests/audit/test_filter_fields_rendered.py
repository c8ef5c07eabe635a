"""The audit log's filter fields rendered once per values and menus (trunks.audit.filters): the
same page as a fresh rendering, and other values or menus shown at once."""

import pytest

from tests.factories import audit_attempt
from tests.pages import per_request_values_blanked
from trunks.audit import filters

LIST = "/audit/"


@pytest.fixture
def log(client, root, tenant_a, tenant_b, alice, bob):
    audit_attempt(tenant=tenant_a, actor=alice, description="Alpha reception")
    audit_attempt(tenant=tenant_b, actor=bob, status="failed", description="Bravo warehouse")
    client.force_login(root)
    filters.FIELDS_HTML.clear()
    yield client
    filters.FIELDS_HTML.clear()


@pytest.mark.parametrize("query", ["", "?status=failed&q=Bravo&sort=oldest"])
def test_the_page_with_the_kept_fields_is_the_page_rendered_afresh(log, monkeypatch, query):
    log.get(LIST + query)
    kept = log.get(LIST + query).content.decode()
    assert filters.FIELDS_HTML._html, "the fields' markup was kept"
    monkeypatch.setattr("trunks.audit.views.filter_fields_html", filters._fields_render)
    fresh = log.get(LIST + query).content.decode()
    assert 'name="actor"' in fresh
    assert per_request_values_blanked(kept) == per_request_values_blanked(fresh)


def test_other_values_and_a_renamed_tenant_show_at_once(
    log, tenant_a, django_capture_on_commit_callbacks
):
    assert '<option value="failed" selected>' in log.get(LIST + "?status=failed").content.decode()
    html = log.get(LIST + "?status=succeeded").content.decode()
    assert '<option value="succeeded" selected>' in html
    assert '<option value="failed" selected>' not in html
    tenant_a.name = "Alpha Renamed"
    with django_capture_on_commit_callbacks(execute=True):  # the tenant list's cache is dropped
        tenant_a.save()
    assert ">Alpha Renamed</option>" in log.get(LIST + "?status=succeeded").content.decode()


def test_fields_with_errors_are_rendered_afresh_each_time(log):
    html = log.get(LIST + "?date_from=not-a-date").content.decode()
    assert 'aria-invalid="true"' in html
    assert not filters.FIELDS_HTML._html


def test_the_menus_choices_are_the_menus_own_not_normalised_again_per_page(log, root):
    from trunks.audit.selectors import audit_filterset

    form = audit_filterset(user=root, data={}).form
    for name in ("tenant", "actor"):
        field = form.fields[name]
        assert field.widget.choices is field.menu.options
        assert field.choices is field.menu.options
