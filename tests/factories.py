"""factory-boy factories: the one place tests build their data."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from trunks.models import Membership, Role, Tenant
from trunks.tenants.credentials import api_key_encrypt

DEFAULT_PASSWORD = "correct-horse-battery-staple"
# The base URL a keyed tenant talks to unless told otherwise (mocked at the HTTP edge in tests).
DEFAULT_BASE_URL = "https://crazytel.test/api/v1"


def tenant_key_set(tenant: Tenant, api_key: str, *, base_url: str | None = None) -> Tenant:
    """Give `tenant` an API key as the portal stores one: encrypted by the real credentials code
    (trunks.tenants.credentials), bound to the tenant's id; the last four characters kept for display."""
    if base_url is not None:
        tenant.base_url = base_url
    tenant.api_key_ciphertext = api_key_encrypt(tenant_id=tenant.pk, plaintext=api_key)
    tenant.api_key_last4 = api_key[-4:]
    tenant.api_key_set_at = timezone.now()
    tenant.save()
    return tenant


def _key_tenant(tenant: Tenant, create: bool, api_key: str | None) -> None:
    if create and api_key:
        tenant_key_set(tenant, api_key, base_url=tenant.base_url or DEFAULT_BASE_URL)


class TenantFactory(factory.django.DjangoModelFactory):
    """A tenant; `TenantFactory(keyed=True)` has an API key (`api_key=…` to choose it, and
    `base_url=…` for where its Crazytel is)."""

    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True  # tenant_key_set saves what it sets

    class Params:
        keyed = factory.Trait(
            api_key=factory.PostGeneration(
                lambda tenant, create, key, **_: _key_tenant(
                    tenant, create, key or f"ct-live-key-{tenant.slug}"
                )
            )
        )

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")

    @factory.post_generation
    def api_key(obj, create, extracted, **kwargs):
        _key_tenant(obj, create, extracted)


class UserFactory(factory.django.DjangoModelFactory):
    """A person. Traits: `superuser=True` (a portal-wide administrator). `member_of=tenant` makes
    them a member of that tenant, as staff unless `member_of__role=Role.MANAGER` (or ADMIN)."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    class Params:
        superuser = factory.Trait(is_superuser=True, is_staff=True)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    # Hashed before the INSERT (make_password, as set_password does), so a user is one write, not
    # an INSERT and then an UPDATE for the password set after it.
    password = factory.django.Password(DEFAULT_PASSWORD)

    @factory.post_generation
    def member_of(obj, create, extracted, role=Role.STAFF, **kwargs):
        if create and extracted is not None:
            MembershipFactory(user=obj, tenant=extracted, role=role)


class MembershipFactory(factory.django.DjangoModelFactory):
    """A person's role in a tenant: staff, or with the `manager` / `admin` trait."""

    class Meta:
        model = Membership

    class Params:
        manager = factory.Trait(role=Role.MANAGER)
        admin = factory.Trait(role=Role.ADMIN)

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.STAFF


def audit_attempt(
    *,
    tenant,
    actor,
    status="succeeded",
    at=None,
    caller_id_number="61412345678",
    description="Reception desk phone",
    trunk_username="",
    upstream_status=None,
    error_category="",
    error_message="",
    related=None,
):
    """A trunk attempt written through the real audit writer (trunks.audit), started at `at`.

    Only the clock is patched, so an attempt can be placed last week; the record is sealed into
    its tenant's chain exactly as the application seals it.
    """
    import uuid
    from unittest import mock

    from django.utils import timezone

    from trunks.audit import writer as audit

    at = at or timezone.now()
    with mock.patch.object(audit.timezone, "now", return_value=at):
        record = audit.audit_attempt_start(
            tenant=tenant,
            actor=actor,
            request=None,
            data={
                "caller_id_number": caller_id_number,
                "description": description,
                "sms_sender": "61412345678",
                "hide_caller_id": False,
            },
            submission_token=uuid.uuid4().hex,
            related=related,
        )
        if status == "pending":
            return record
        if status == "succeeded" and not trunk_username:
            trunk_username = f"CT{uuid.uuid4().int % 10**10:010d}"
        return audit.audit_attempt_finish(
            record=record,
            status=status,
            upstream_status=upstream_status or (201 if status == "succeeded" else None),
            error_category=error_category,
            error_message=error_message,
            trunk_username=trunk_username if status == "succeeded" else "",
            response={"username": trunk_username} if status == "succeeded" else None,
        )
