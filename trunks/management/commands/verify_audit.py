"""Recompute every tenant's audit hash chain; report the first broken link and exit non-zero."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from trunks.audit.chain import audit_chain_verify
from trunks.audit.checkpoints import audit_checkpoints_verify
from trunks.models import Tenant


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chains (one per tenant). Prints the counts when every chain "
        "holds; otherwise names, per tenant, the first record whose link or content does not "
        "match, and exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="only this tenant (its slug)")
        parser.add_argument(
            "--chunk-size", type=int, default=2000, help="records fetched per round trip"
        )
        parser.add_argument(
            "--checkpoints",
            metavar="PATH",
            help="also check each chain against its latest signed checkpoint in this file or "
            "directory (audit_checkpoint): catches records removed from the end of a chain and "
            "chains rolled back to an earlier state",
        )

    def handle(
        self, *args, tenant: str | None, chunk_size: int, checkpoints: str | None, **options
    ):
        tenants = Tenant.objects.order_by("id")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"No tenant with slug {tenant!r}.")
        report = audit_chain_verify(tenants=tenants, chunk_size=max(chunk_size, 100))
        anchored = None
        if checkpoints:
            try:
                anchored = audit_checkpoints_verify(
                    path=checkpoints,
                    tenant_ids=list(tenants.values_list("id", flat=True)) if tenant else None,
                )
            except (ImproperlyConfigured, OSError) as exc:
                raise CommandError(str(exc)) from exc
        if not report.ok or (anchored is not None and not anchored.ok):
            for problem in report.breaks:
                self.stderr.write(f"BROKEN: {problem}")
            for problem in anchored.problems if anchored is not None else []:
                self.stderr.write(f"CHECKPOINT: {problem}")
            raise CommandError(
                f"The audit log has been altered: {len(report.breaks)} of {report.tenants} "
                f"tenant chain(s) broken ({report.sealed} record(s) verified before the breaks)"
                + (
                    f"; {len(anchored.problems)} checkpoint problem(s)."
                    if anchored is not None
                    else "."
                )
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {report.tenants} tenant chain(s), {report.sealed} sealed record(s) verified, "
                f"{report.pending} pending"
                + (
                    f"; every chain reaches its latest of {anchored.read} signed checkpoint(s)."
                    if anchored is not None
                    else "."
                )
            )
        )
