"""What the sections share: the bench's users and tenants, the sandbox and portal servers, the data."""

import io
import time
from functools import cached_property
from pathlib import Path

from .environment import Gunicorn
from .harness import FeatureMissing
from .portal import Lane, lane_create, session_cookie_for, user_create


class Context:
    def __init__(self, *, config, db, workdir: Path, log):
        self.config = config
        self.db = db
        self.workdir = workdir
        self.log = log
        self._servers: list[Gunicorn] = []
        self._cookies: dict[int, str] = {}
        self._portal: Gunicorn | None = None
        self._audit_rows: int | None = None
        self.audit_generation_note = ""
        self._trunk_rows: int | None = None
        self.trunk_generation_note = ""
        self.errors = 0

    def error(self, exc: BaseException) -> None:
        """A failure inside a section that did not stop it: shown, and the run exits non-zero."""
        import traceback

        self.errors += 1
        traceback.print_exception(exc)

    # --- servers ---------------------------------------------------------------------------------

    def start_server(self, name: str, **kwargs) -> Gunicorn:
        server = Gunicorn(database_url=self.db.url, workdir=self.workdir, name=name, **kwargs)
        self._servers.append(server)
        return server

    def sandbox_available(self) -> bool:
        try:
            import trunks.sandbox.models  # noqa: F401
            from trunks.sandbox import urls
        except ImportError:
            return False
        return bool(urls.urlpatterns)

    @cached_property
    def sandbox(self) -> Gunicorn:
        """The built-in Crazytel sandbox, served by its own gunicorn; every request is logged."""
        if not self.sandbox_available():
            raise FeatureMissing("sandbox")
        workers = self.config.server_workers
        self.log(f"starting the sandbox (gunicorn, {workers} worker(s), 4 threads each)")
        return self.start_server("sandbox", workers=workers, threads=4, access_log=True)

    def sandbox_api_url(self, server: Gunicorn | None = None) -> str:
        return f"{(server or self.sandbox).base_url}/sandbox/api/v1"

    def sandbox_calls(self, path_part: str, server: Gunicorn | None = None) -> int:
        """Requests the sandbox received whose path contains `path_part` (counted at the sandbox)."""
        server = server or self.sandbox
        return sum(
            1 for line in server.access_lines() if path_part in line and "/sandbox/api/" in line
        )

    def portal_server(self) -> Gunicorn:
        if self._portal is None:
            workers = self.config.server_workers
            self.log(
                f"starting the portal (gunicorn, {workers} worker(s), portal/gunicorn_conf.py)"
            )
            self._portal = self.start_server("portal", workers=workers, production_config=True)
        return self._portal

    def close(self) -> None:
        # The figures are taken, no request is in flight: each server stops at once (a graceful
        # stop waited 2 s for the connections the bench's client keeps alive), all together.
        for server in self._servers:
            server.stop_begin(quick=True)
        for server in self._servers:
            server.stop_end()
        self._servers.clear()

    # --- people and tenants ----------------------------------------------------------------------

    @cached_property
    def root(self):
        return user_create("bench-root", superuser=True)

    @cached_property
    def root_client(self):
        from .portal import logged_in_client

        return logged_in_client(self.root)

    @cached_property
    def lanes(self) -> list[Lane]:
        """Staff members, each alone in a tenant with its own sandbox key (own rate budget)."""
        count = max(2, min(12, self.config.create_repeats + 2))
        api_url = self.sandbox_api_url()
        return [lane_create(index=i, prefix="lane", sandbox_api_url=api_url) for i in range(count)]

    def session_cookie(self, user) -> str:
        if user.pk not in self._cookies:
            self._cookies[user.pk] = session_cookie_for(user)
        return self._cookies[user.pk]

    # --- the audit table -------------------------------------------------------------------------

    def audit_records(self) -> int:
        """Make sure the audit table holds `audit_rows` records made by the project's generator."""
        from django.core.management import call_command, get_commands

        from trunks.models import AuditRecord

        if self._audit_rows is not None:
            return self._audit_rows
        if "audit_generate" not in get_commands():
            raise FeatureMissing("audit_generate")
        wanted = self.config.audit_rows
        have = AuditRecord.objects.count()
        if have >= wanted:
            self.audit_generation_note = "kept from an earlier run (--keep-db)"
        else:
            self.log(f"generating {wanted - have:,} audit records with audit_generate")
            started = time.monotonic()
            call_command(
                "audit_generate",
                count=wanted - have,
                tenants=self.config.bench_tenants,
                stdout=io.StringIO(),
            )
            elapsed = time.monotonic() - started
            self.audit_generation_note = (
                f"audit_generate wrote {wanted - have:,} in {elapsed:.0f} s, "
                f"{(wanted - have) / elapsed:,.0f}/s"
            )
            self.log(self.audit_generation_note)
        self._audit_rows = AuditRecord.objects.count()
        return self._audit_rows

    # --- the trunk table -------------------------------------------------------------------------

    def trunk_records(self) -> int:
        """Make sure the trunk table holds `trunk_rows` trunks, topped up by `trunk_generate`."""
        from django.core.management import call_command, get_commands

        from trunks.models import Trunk

        if self._trunk_rows is not None:
            return self._trunk_rows
        if "trunk_generate" not in get_commands():
            raise FeatureMissing("trunk_generate")
        wanted = self.config.trunk_rows
        have = Trunk.objects.count()
        if have >= wanted:
            self.trunk_generation_note = "kept from an earlier run (--keep-db)"
        else:
            self.log(f"generating {wanted - have:,} trunks with trunk_generate")
            started = time.monotonic()
            call_command(
                "trunk_generate",
                count=wanted - have,
                tenants=self.config.bench_tenants,
                stdout=io.StringIO(),
            )
            elapsed = time.monotonic() - started
            self.trunk_generation_note = (
                f"trunk_generate wrote {wanted - have:,} in {elapsed:.1f} s, "
                f"{(wanted - have) / elapsed:,.0f}/s"
            )
            self.log(self.trunk_generation_note)
        self._trunk_rows = Trunk.objects.count()
        return self._trunk_rows
