"""Create or refresh a sandbox account (idempotent) and print its key, for demos and scripts."""

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trunks.sandbox.models import SandboxAccount
from trunks.sandbox.services import sandbox_account_ensure, sandbox_faults_clear


class Command(BaseCommand):
    help = (
        "Create or refresh the sandbox account NAME with Australian verified numbers. The key comes "
        "from --api-key-stdin or SANDBOX_API_KEY, else stays as it is (a new account gets a random "
        "one, printed this once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--api-key-stdin", action="store_true", help="Read the key from stdin.")
        parser.add_argument("--clear-faults", action="store_true", help="Switch every fault off.")

    def handle(self, *args, name, api_key_stdin, clear_faults, **options):
        if not settings.SANDBOX_ENABLED:
            self.stderr.write("Note: SANDBOX_ENABLED is off; the sandbox is not being served.")
        api_key = (
            sys.stdin.readline().strip() if api_key_stdin else os.environ.get("SANDBOX_API_KEY")
        )
        is_new = not SandboxAccount.objects.filter(name=name).exists()
        try:
            account = sandbox_account_ensure(name=name, api_key=api_key or None)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if clear_faults:
            sandbox_faults_clear(account=account)
        self.stdout.write(f"Sandbox account '{account.name}' (account code {account.account_code})")
        if is_new and not api_key:
            # Generated here: this is the only time anyone can learn it.
            self.stdout.write(f"API key (shown once): {account.api_key}")
        else:
            self.stdout.write(f"API key: {account.api_key_masked}")
        for item in account.verified_numbers:
            self.stdout.write(f"  {item['number']}  {item.get('label', '')}")
