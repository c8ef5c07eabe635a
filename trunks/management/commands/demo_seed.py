"""Seed, idempotently, the demo tenant (pointing at the built-in sandbox) and three demo users."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from trunks.access import COMMAND_LINE
from trunks.management.commands.tenant_set import stored_key_or_none
from trunks.models import Membership, Role, Tenant
from trunks.sandbox.services import sandbox_account_ensure
from trunks.tenants import accounts, members, services

DEMO_SLUG = "demo"
DEMO_NAME = "Demo team"
DEMO_USERS = [
    ("demo-staff", Role.STAFF),
    ("demo-manager", Role.MANAGER),
    ("demo-admin", Role.ADMIN),
]


class Command(BaseCommand):
    help = "Create or refresh the demo tenant and the demo-staff/demo-manager/demo-admin users."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000/sandbox/api/v1",
            help="The Crazytel API base URL the demo tenant uses (the built-in sandbox).",
        )

    @transaction.atomic
    def handle(self, *args, base_url: str, **options):
        actor = COMMAND_LINE
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = services.tenant_create(
                actor=actor, name=DEMO_NAME, slug=DEMO_SLUG, base_url=base_url
            )
        else:
            # Only what differs is changed (and audited): a second start records nothing new.
            tenant = services.tenant_update(
                actor=actor, tenant=tenant, base_url=base_url, is_active=True
            )
        # The demo tenant's Crazytel account is the sandbox's; its key is stored like any other.
        account = sandbox_account_ensure(name=DEMO_NAME)
        if stored_key_or_none(tenant) != account.api_key:
            tenant = services.tenant_credential_set(
                actor=actor, tenant=tenant, api_key=account.api_key
            )
        User = get_user_model()
        lines = []
        for username, role in DEMO_USERS:
            # A fresh password each start, printed once: the demo users' only way in.
            password = accounts.first_login_password_generate()
            user = User.objects.filter(username=username).first()
            membership = (
                Membership.objects.filter(user=user, tenant=tenant).first() if user else None
            )
            if membership is not None:
                members.member_set_role(
                    actor=actor, tenant=tenant, membership_id=membership.pk, role=role
                )
            else:
                members.member_add(
                    actor=actor, tenant=tenant, username=username, role=role, create_user=True
                )
                user = User.objects.get(username=username)
            # Printed to the person who runs the demo and signs in as these users: theirs to use.
            accounts.user_password_set(user=user, password=password, chosen_by_owner=True)
            lines.append(f"  {username:<14} {password}   ({role})")
        self.stdout.write(
            f"Demo tenant '{tenant.name}' uses the sandbox at {base_url} "
            f"(API key {tenant.api_key_masked})"
        )
        self.stdout.write("Demo users (passwords are new on every start):")
        self.stdout.write("\n".join(lines))
