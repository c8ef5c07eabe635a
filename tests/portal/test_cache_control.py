"""Pages that show tenant data are never kept by a shared cache or the browser (issue 16);
static files and /healthz keep their own caching."""

import pytest
from django.urls import reverse

from tests.factories import audit_attempt


def _directives(response) -> set[str]:
    return {d.strip() for d in response.get("Cache-Control", "").split(",") if d.strip()}


@pytest.fixture
def signed_in(client, alice, mallory, adam, keyed_a, crazytel, tenant_a):
    audit_attempt(tenant=tenant_a, actor=alice, description="Alpha reception")
    return client


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("mallory", "/audit/"),
        ("mallory", "/audit/chart/"),
        ("mallory", "/audit/export.csv"),
        ("adam", "/tenants/"),
        ("alice", "/trunks/new/"),
        ("alice", "/"),
    ],
)
def test_every_page_with_tenant_data_is_private_and_not_stored(signed_in, request, who, path):
    signed_in.force_login(request.getfixturevalue(who))
    response = signed_in.get(path, follow=False)
    assert response.status_code in (200, 302), (path, response.status_code)
    assert {"private", "no-store"} <= _directives(response), (path, response.get("Cache-Control"))


def test_healthz_keeps_its_own_caching(client, db):
    response = client.get(reverse("healthz"))
    assert "no-store" in _directives(response)
    assert "max-age=0" in _directives(response)  # never_cache's own header, left as it was
