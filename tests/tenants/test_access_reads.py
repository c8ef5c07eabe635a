"""The reader's tenants and roles, read with SQL compiled once per connection (trunks.reads): the
same rows the ORM gives, today's memberships on every call, converters applied."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Q

from tests.factories import MembershipFactory, TenantFactory, tenant_key_set
from trunks.access import user_tenant_access, user_tenants_loaded
from trunks.models import Membership, Role, Tenant
from trunks.reads import CompiledRead


def _fresh(user):
    """The user as a new request sees it (nothing kept on the object from an earlier read)."""
    return get_user_model().objects.get(pk=user.pk)


def _as_orm_reads(tenants):
    return [
        {f.attname: getattr(t, f.attname) for f in Tenant._meta.concrete_fields} for t in tenants
    ]


def test_a_members_tenants_and_roles_are_the_orms_by_name(alice, tenant_a, tenant_b):
    tenant_key_set(tenant_a, "ct-live-key-0123456789")
    zulu = TenantFactory(name="Zulu", slug="zulu")
    MembershipFactory(user=alice, tenant=zulu, role=Role.MANAGER)
    MembershipFactory(user=alice, tenant=tenant_b, role=Role.ADMIN)

    access = user_tenant_access(user=_fresh(alice))
    expected = list(
        Membership.objects.filter(user=alice)
        .order_by("tenant__name")
        .values_list("tenant_id", "tenant__name", "tenant__slug", "role")
    )
    assert [(a.id, a.name, a.slug, a.role) for a in access] == expected

    user = _fresh(alice)
    loaded = user_tenants_loaded(user=user)
    staff_or_more = Tenant.objects.filter(
        Q(memberships__user=alice) & Q(memberships__role__in=Role.at_least(Role.STAFF))
    ).order_by("name")
    assert _as_orm_reads(loaded) == _as_orm_reads(staff_or_more)
    assert [t.name for t in loaded] == ["Alpha Telecom", "Bravo Networks", "Zulu"]
    assert [a.id for a in user._portal_tenant_access] == [row[0] for row in expected]
    # Dates come back as dates (SQLite sends text: the ORM's converters are applied).
    assert isinstance(loaded[0].created_at, datetime.datetime)
    assert all(t._state.db == "default" and not t._state.adding for t in loaded)


def test_each_call_reads_todays_memberships(alice, tenant_a, tenant_b):
    assert [a.id for a in user_tenant_access(user=_fresh(alice))] == [tenant_a.pk]
    Membership.objects.filter(user=alice).delete()
    MembershipFactory(user=alice, tenant=tenant_b, role=Role.ADMIN)
    assert [(a.id, a.role) for a in user_tenant_access(user=_fresh(alice))] == [
        (tenant_b.pk, Role.ADMIN)
    ]
    assert user_tenants_loaded(user=_fresh(alice)) == [tenant_b]


def test_a_person_without_memberships_has_no_tenants(charlie, tenant_a):
    assert user_tenant_access(user=_fresh(charlie)) == []
    assert user_tenants_loaded(user=_fresh(charlie)) == []


def test_a_superuser_loads_every_tenant_by_name(root, tenant_a, tenant_b):
    TenantFactory(name="Aardvark", slug="aardvark")
    loaded = user_tenants_loaded(user=_fresh(root))
    assert _as_orm_reads(loaded) == _as_orm_reads(Tenant.objects.order_by("name"))


@pytest.mark.django_db
def test_an_argument_that_is_not_a_parameter_is_refused():
    read = CompiledRead(lambda user_id: Membership.objects.values_list("id"), arguments=1)
    with pytest.raises(ValueError):
        read.rows(1)
