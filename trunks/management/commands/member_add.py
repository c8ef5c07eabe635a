"""Add a user to a tenant with a role from the command line, creating the user when needed."""

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from trunks.access import COMMAND_LINE
from trunks.errors import PortalError
from trunks.models import Membership, Role, Tenant
from trunks.tenants import accounts, members


class Command(BaseCommand):
    help = (
        "Give <username> a role in tenant <slug>, creating the user when needed (password from "
        "stdin with --password-stdin, else generated and printed once). Run again to change the role."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read a new user's password from the first line of stdin (existing users keep "
            "theirs unless this is given).",
        )

    def handle(self, *args, slug, username, role, password_stdin, **options):
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin was given but stdin held no password.")
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"There is no tenant '{slug}'. Create it with tenant_set first.")
        actor = COMMAND_LINE
        User = get_user_model()
        try:
            with transaction.atomic():
                user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
                membership = (
                    Membership.objects.filter(user=user, tenant=tenant).first() if user else None
                )
                if membership is not None:
                    members.member_set_role(
                        actor=actor, tenant=tenant, membership_id=membership.pk, role=role
                    )
                    if password is not None:
                        accounts.user_password_set(user=user, password=password)
                    self.stdout.write(f"{username} is {role} in {tenant.slug}.")
                    return
                if user is not None and password is not None:
                    accounts.user_password_set(user=user, password=password)
                added = members.member_add(
                    actor=actor,
                    tenant=tenant,
                    username=username,
                    role=role,
                    create_user=True,
                    password=password,
                )
        except PortalError as exc:
            raise CommandError(exc.message) from None
        if added.user_created:
            self.stdout.write(f"Created user {username} and added them to {tenant.slug} as {role}.")
            if added.password:
                # Printed once, to the operator's terminal; never logged or stored in clear.
                self.stdout.write(f"Password for {username} (shown once): {added.password}")
        else:
            self.stdout.write(f"Added {username} to {tenant.slug} as {role}.")
