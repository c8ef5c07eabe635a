"""factory-boy factories: the one place tests build their data."""

import factory
from django.contrib.auth import get_user_model

from trunks.models import Membership, Role, Tenant

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

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
