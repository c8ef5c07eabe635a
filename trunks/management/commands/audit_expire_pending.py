"""Cron-friendly: turn trunk attempts stuck in `pending` into `unknown` so managers resolve them."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from trunks.audit.tasks import pending_attempts_expire


class Command(BaseCommand):
    help = (
        "Mark trunk attempts left pending longer than --older-than seconds (a process crashed "
        "mid-call) as unknown. Safe to run from cron every few minutes on every host."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=600, help="seconds (default 600)")

    def handle(self, *args, older_than: int, **options):
        if older_than < 60:
            self.stderr.write(
                "--older-than must be at least 60 seconds: a live call may still run."
            )
            raise SystemExit(2)
        count = pending_attempts_expire(older_than=timedelta(seconds=older_than))
        self.stdout.write(f"{count} pending attempt(s) older than {older_than}s marked unknown.")
