"""Delete django-axes' login records older than the retention (they grow with every login)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.housekeeping import axes_records_prune


class Command(BaseCommand):
    help = (
        "Delete django-axes' access and failure logs older than --days (default "
        "AXES_RECORDS_RETENTION_DAYS), and failure counters past their cool-off. Run it daily "
        "(cron, or the portal.tasks.prune_axes_records task)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, days: int | None, **options):
        days = settings.AXES_RECORDS_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be 1 or more.")
        deleted = axes_records_prune(older_than=timedelta(days=days))
        self.stdout.write(
            f"Deleted {deleted['access_logs']} access log(s) and {deleted['failure_logs']} "
            f"failure log(s) older than {days} day(s), and {deleted['attempts']} expired "
            "failure counter(s)."
        )
