"""Each person's home page at `/`: what their roles let them do and what needs their attention,
read only from their own tenants (alice staff and mallory manager in A, adam admin in A, bob in B,
charlie in none)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import TenantFactory, UserFactory, audit_attempt
from trunks.audit.selectors import audit_unknown_unresolved, audit_week_totals
from trunks.provisioning.selectors import trunk_attempts_recent_for, trunk_attempts_unknown_for
from trunks.tenants.selectors import tenant_list_needing_attention

pytestmark = pytest.mark.django_db


def home(client, user):
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return response


def test_it_no_longer_sends_people_to_the_form(client, alice):
    response = home(client, alice)
    assert response.templates[0].name == "home.html"
    assert reverse("trunks:create") in response.content.decode()


def test_it_tells_someone_without_a_tenant_to_ask_an_administrator(client, charlie):
    html = home(client, charlie).content.decode()
    assert "do not belong to any tenant" in html
    assert "Create a trunk" not in html


def test_staff_see_their_own_attempts_and_their_unknown_outcomes_only(
    client, alice, mallory, tenant_a, bob, tenant_b
):
    audit_attempt(tenant=tenant_a, actor=alice, description="Alice desk")
    audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="Alice lost")
    audit_attempt(tenant=tenant_a, actor=mallory, description="Mallory desk")
    audit_attempt(tenant=tenant_b, actor=bob, status="unknown", description="Bob lost")

    html = home(client, alice).content.decode()

    assert "Alice desk" in html and "Alice lost" in html
    assert "Your attempts with an unknown outcome" in html
    assert "Mallory desk" not in html and "Bob lost" not in html
    assert "Unknown outcomes to resolve" not in html  # a manager's section
    assert "Tenants needing attention" not in html  # an admin's section


def test_a_retried_unknown_outcome_no_longer_asks_for_attention(alice, tenant_a):
    lost = audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
    assert trunk_attempts_unknown_for(user=alice) == [lost]
    audit_attempt(tenant=tenant_a, actor=alice, related=lost)
    assert trunk_attempts_unknown_for(user=alice) == []


def test_attempts_in_a_tenant_left_behind_are_not_listed(alice, tenant_b):
    audit_attempt(tenant=tenant_b, actor=alice)  # alice is not (or no longer) in B
    assert trunk_attempts_recent_for(user=alice) == []


def test_managers_see_their_tenants_unresolved_unknowns_and_the_week(
    client, alice, mallory, tenant_a, bob, tenant_b
):
    audit_attempt(tenant=tenant_a, actor=alice, status="unknown", description="Alice lost")
    audit_attempt(tenant=tenant_a, actor=alice, status="failed")
    audit_attempt(tenant=tenant_a, actor=alice, at=timezone.now() - timedelta(days=10))
    audit_attempt(tenant=tenant_b, actor=bob, status="unknown", description="Bob lost")

    html = home(client, mallory).content.decode()

    assert "Unknown outcomes to resolve" in html and "Alice lost" in html
    assert "Bob lost" not in html
    week = audit_week_totals(user=mallory)
    assert (week["total"], week["unknown"], week["failed"], week["succeeded"]) == (2, 1, 1, 0)
    assert [r.description for r in audit_unknown_unresolved(user=mallory)] == ["Alice lost"]
    assert audit_unknown_unresolved(user=alice) == []  # staff read no one else's records


def test_admins_see_tenants_without_a_key_failing_or_inactive(client, adam, tenant_a):
    keyed = TenantFactory(name="Keyed", slug="keyed", keyed=True)
    failing = TenantFactory(name="Failing", slug="failing", keyed=True, connection_ok=False)
    inactive = TenantFactory(name="Asleep", slug="asleep", keyed=True, is_active=False)
    for tenant in (keyed, failing, inactive):
        UserFactory(member_of=tenant)  # someone else's tenants: adam does not see them
    assert tenant_list_needing_attention(user=adam) == [tenant_a]  # no key yet

    html = home(client, adam).content.decode()
    assert "Tenants needing attention" in html and "no API key" in html
    assert "Failing" not in html

    root = UserFactory(superuser=True)
    assert [t.name for t in tenant_list_needing_attention(user=root)] == [
        "Alpha Telecom",
        "Asleep",
        "Failing",
    ]
    html = home(client, root).content.decode()
    for section in ("Tenants needing attention", "Unknown outcomes to resolve", "Create a trunk"):
        assert section in html
    assert "connection failing" in html and "inactive" in html
