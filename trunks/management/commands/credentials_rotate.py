"""Re-encrypt every stored tenant API key under the newest CREDENTIALS_ENCRYPTION_KEYS entry."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from trunks.models import Tenant
from trunks.tenants.credentials import CredentialError, api_key_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every tenant's stored API key under the newest encryption key. Put the new key "
        "first in CREDENTIALS_ENCRYPTION_KEYS, keep the old ones after it, run this, then drop the "
        "old keys."
    )

    def handle(self, *args, **options):
        rotated, failed = 0, []
        for tenant_id in (
            Tenant.objects.exclude(api_key_ciphertext="")
            .order_by("pk")
            .values_list("pk", flat=True)
        ):
            # One transaction per tenant: a failure leaves the others done and this one untouched.
            with transaction.atomic():
                tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
                try:
                    new = api_key_reencrypt(
                        tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext
                    )
                except CredentialError as exc:
                    failed.append(f"{tenant.slug}: {exc}")
                    continue
                Tenant.objects.filter(pk=tenant.pk).update(api_key_ciphertext=new)
                rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} API key(s) under the newest encryption key.")
        if failed:
            raise CommandError(
                f"{len(failed)} key(s) could not be re-encrypted (left unchanged):\n  "
                + "\n  ".join(failed)
                + "\nAdd the encryption key they were stored under to CREDENTIALS_ENCRYPTION_KEYS, "
                "or set those tenants' API keys again."
            )
