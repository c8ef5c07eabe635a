"""Rows read with SQL written once per process (trunks.rows) are what the ORM reads: the signed-in
person's tenants (trunks.access.user_tenants_loaded) on SQLite and PostgreSQL alike."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import MembershipFactory, TenantFactory, UserFactory
from trunks.access import _memberships_with_tenants, user_tenant_access, user_tenants_loaded
from trunks.models import Membership, Role


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_tenants_read_by_hand_are_the_orms_rows_in_the_orms_order(db):
    person = UserFactory()
    # Names out of creation order, every role, and a deactivated, keyed tenant among them.
    for name, role in [("Zeta", Role.ADMIN), ("alpha", Role.STAFF), ("Mid", Role.MANAGER)]:
        MembershipFactory(
            user=person, tenant=TenantFactory(name=name, slug=name.lower()), role=role
        )
    TenantFactory(name="Other", slug="other")  # not theirs
    keyed = TenantFactory(name="Keyed", slug="keyed", keyed=True, is_active=False)
    MembershipFactory(user=person, tenant=keyed)

    expected = list(
        Membership.objects.filter(user=person).select_related("tenant").order_by("tenant__name")
    )
    with CaptureQueriesContext(connection) as queries:
        tenants = user_tenants_loaded(user=person)
    assert len(queries.captured_queries) == 1
    assert [_fields(t) for t in tenants] == [_fields(m.tenant) for m in expected]
    assert [_fields(m) for m in _memberships_with_tenants(person)] == [_fields(m) for m in expected]
    assert [(a.id, a.name, a.slug, a.role) for a in user_tenant_access(user=person)] == [
        (m.tenant_id, m.tenant.name, m.tenant.slug, m.role) for m in expected
    ]
    for tenant in tenants:
        assert tenant._state.adding is False and tenant._state.db == "default"
        assert isinstance(_fields(tenant)["is_active"], bool)
    assert all(m.created_at.tzinfo is not None for m in _memberships_with_tenants(person))


def test_someone_with_no_tenant_reads_none(db):
    assert user_tenants_loaded(user=UserFactory()) == []
