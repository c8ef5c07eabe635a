"""The factories' traits build what their names say (tests/factories.py)."""

from tests.factories import MembershipFactory, TenantFactory, UserFactory
from trunks.models import Membership, Role
from trunks.tenants.credentials import api_key_decrypt


def test_a_keyed_tenant_holds_its_key_encrypted_by_the_credentials_code(db):
    tenant = TenantFactory(keyed=True)
    assert tenant.has_api_key and tenant.base_url
    plain = api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext)
    assert plain == f"ct-live-key-{tenant.slug}" and tenant.api_key_last4 == plain[-4:]
    chosen = TenantFactory(api_key="ct-chosen-1234", base_url="http://crazytel.test/v1")
    assert api_key_decrypt(tenant_id=chosen.pk, ciphertext=chosen.api_key_ciphertext) == (
        "ct-chosen-1234"
    )
    assert not TenantFactory().has_api_key


def test_a_superuser_and_members_with_their_roles(db):
    root = UserFactory(superuser=True)
    assert root.is_superuser and root.is_staff
    tenant = TenantFactory()
    staff = UserFactory(member_of=tenant)
    manager = UserFactory(member_of=tenant, member_of__role=Role.MANAGER)
    roles = dict(Membership.objects.filter(tenant=tenant).values_list("user__username", "role"))
    assert roles == {staff.username: Role.STAFF, manager.username: Role.MANAGER}
    assert MembershipFactory(admin=True).role == Role.ADMIN
    assert not UserFactory().is_superuser
