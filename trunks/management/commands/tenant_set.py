"""Create or update a tenant from the command line (configuration as code); the key never on argv."""

import os
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from trunks.access import COMMAND_LINE
from trunks.errors import PortalError
from trunks.models import Tenant
from trunks.tenants import services
from trunks.tenants.credentials import CredentialError, api_key_decrypt


def stored_key_or_none(tenant: Tenant) -> str | None:
    if not tenant.has_api_key:
        return None
    try:
        return api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext)
    except CredentialError:
        return None


class Command(BaseCommand):
    help = (
        "Create or update the tenant <slug>. The API key comes from stdin (--api-key-stdin) or from "
        "the CRAZYTEL_API_KEY environment variable, never from the command line."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The tenant's short name (used in URLs).")
        parser.add_argument("--name", help="The tenant's name (required to create a tenant).")
        parser.add_argument(
            "--base-url",
            help="The tenant's Crazytel API base URL; an empty string means the portal default.",
        )
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--active", dest="is_active", action="store_true", default=None)
        state.add_argument("--inactive", dest="is_active", action="store_false")
        parser.add_argument(
            "--api-key-stdin",
            action="store_true",
            help="Read the API key from the first line of stdin.",
        )

    def _api_key(self, *, from_stdin: bool) -> str:
        if from_stdin:
            key = sys.stdin.readline().strip()
            if not key:
                raise CommandError("--api-key-stdin was given but stdin held no key.")
            return key
        return os.environ.get("CRAZYTEL_API_KEY", "").strip()

    def handle(self, *args, slug, name, base_url, is_active, api_key_stdin, **options):
        api_key = self._api_key(from_stdin=api_key_stdin)
        actor = COMMAND_LINE
        try:
            with transaction.atomic():
                tenant = Tenant.objects.filter(slug=slug).first()
                if tenant is None:
                    if not name:
                        raise CommandError(
                            f"There is no tenant '{slug}': give --name to create it."
                        )
                    tenant = services.tenant_create(
                        actor=actor,
                        name=name,
                        slug=slug,
                        base_url=base_url or "",
                        is_active=True if is_active is None else is_active,
                    )
                    verb = "Created"
                else:
                    tenant = services.tenant_update(
                        actor=actor,
                        tenant=tenant,
                        name=name,
                        base_url=base_url,
                        is_active=is_active,
                    )
                    verb = "Updated"
                key_note = ""
                if api_key and stored_key_or_none(tenant) == api_key:
                    # Re-running the same configuration changes nothing (and records nothing).
                    key_note = f", API key {tenant.api_key_masked} unchanged"
                elif api_key:
                    tenant = services.tenant_credential_set(
                        actor=actor, tenant=tenant, api_key=api_key
                    )
                    key_note = f", API key {tenant.api_key_masked}"
        except PortalError as exc:
            raise CommandError(exc.message) from None
        state = "active" if tenant.is_active else "inactive"
        self.stdout.write(f"{verb} tenant {tenant.slug} ({tenant.name}, {state}{key_note}).")
