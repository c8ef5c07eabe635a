"""List tenants, their state and members. API keys appear masked (••••abcd), never in clear."""

from django.core.management.base import BaseCommand

from trunks.models import Tenant
from trunks.tenants.selectors import tenant_members_list


class Command(BaseCommand):
    help = "List tenants with their state, masked API key, connection and members."

    def handle(self, *args, **options):
        tenants = Tenant.objects.order_by("slug")
        if not tenants:
            self.stdout.write(
                "No tenants yet. Create one with: manage.py tenant_set <slug> --name …"
            )
            return
        for tenant in tenants:
            key = tenant.api_key_masked or "no key"
            if tenant.connection_ok is None:
                connection = "untested"
            else:
                when = tenant.connection_checked_at.isoformat(timespec="seconds")
                connection = f"{'ok' if tenant.connection_ok else 'failing'} ({when})"
            state = "active" if tenant.is_active else "inactive"
            self.stdout.write(
                f"{tenant.slug}  {tenant.name}  [{state}]  key: {key}  connection: {connection}  "
                f"api: {tenant.effective_base_url}"
            )
            members = tenant_members_list(tenant=tenant)
            for m in members:
                self.stdout.write(f"    {m.user.get_username():<24} {m.role}")
            if not members:
                self.stdout.write("    (no members)")
