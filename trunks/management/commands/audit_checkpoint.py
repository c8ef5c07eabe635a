"""Sign every tenant's audit chain head and write it outside the database (see trunks.audit.checkpoints)."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from trunks.audit.checkpoints import audit_checkpoints_write


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of each tenant's audit chain head (position, hash, time) to the "
        "log, and append it to AUDIT_CHECKPOINT_PATH (or --path) when set. The workers do this on "
        "a schedule; `verify_audit --checkpoints PATH` checks the chains against them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", help="append to this file or directory instead")

    def handle(self, *args, path: str | None, **options):
        try:
            checkpoints = audit_checkpoints_write(path=path)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(f"Could not append the checkpoints: {exc}") from exc
        for c in checkpoints:
            self.stdout.write(
                f"{c['tenant_slug']}: position {c['chain_seq']} {c['record_hash'][:12]}"
            )
        self.stdout.write(self.style.SUCCESS(f"{len(checkpoints)} checkpoint(s) written."))
