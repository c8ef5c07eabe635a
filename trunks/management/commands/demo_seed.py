"""Seed, idempotently, the demo tenant (pointing at the built-in sandbox) and three demo users."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from trunks.models import Membership, Role, Tenant

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
        tenant, _ = Tenant.objects.update_or_create(
            slug="demo", defaults={"name": "Demo team", "base_url": base_url, "is_active": True}
        )
        User = get_user_model()
        lines = []
        for username, role in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            # A fresh password each start, printed once: the demo users' only way in.
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
            lines.append(f"  {username:<14} {password}   ({role})")
        self.stdout.write(f"Demo tenant '{tenant.name}' uses the sandbox at {base_url}")
        self.stdout.write("Demo users (passwords are new on every start):")
        self.stdout.write("\n".join(lines))
