"""The real-worker fixtures (tests/tasks/conftest.py) and a fake Crazytel at the HTTP edge that
records every create call it receives, for comparing with what the job says it did."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.tasks.conftest import shared_database, start_worker  # noqa: F401

NUMBER = "61298765432"


class FakeCrazytel:
    """POST /sip-trunks/ creates a trunk (recorded) unless a fault is due for that call."""

    def __init__(self, faults: dict[int, str]):
        self.faults = faults  # call number (1-based) → "500" | "drop" | "429" | "500-after"
        self.calls: list[float] = []  # monotonic time of every create call received
        self.created: dict[str, str] = {}  # username → description
        self.lock = threading.Lock()

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(200, [{"number": NUMBER, "label": "Office"}])

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.calls.append(time.monotonic())
                    n = len(fake.calls)
                    fault = fake.faults.get(n)
                    username = f"CT{n:06d}"
                    if fault in (None, "drop-after"):
                        fake.created[username] = body.get("description", "")
                if fault == "500":
                    return self._send(500, {"detail": "backend down"})
                if fault == "429":
                    return self._send(429, {"detail": "slow down"}, [("Retry-After", "1")])
                if fault == "drop-after":  # created, then the answer is lost
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._send(200, {"id": f"00000000-0000-0000-0000-{n:012d}", "username": username})

        return Handler


@pytest.fixture
def fake_crazytel():
    def start(faults=None):
        fake = FakeCrazytel(faults or {})
        server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        fake.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
        fake.server = server
        started.append(server)
        return fake

    started: list = []
    yield start
    for server in started:
        server.shutdown()
        server.server_close()


# --- The built-in sandbox over real HTTP, with its own record of every create call -------------


class SandboxUpstream:
    """The portal's sandbox (trunks/sandbox) served by pytest-django's live server, an account of its
    own with a key unique to this test (so no other test or xdist worker shares its limiter state),
    and a log of when each create call arrived and which injected fault answered it."""

    def __init__(self, live_server, api_key: str):
        from trunks.sandbox.services import sandbox_account_ensure

        self.url = f"{live_server.url}/sandbox/api/v1"
        self.api_key = api_key
        # The sandbox's own per-calendar-minute limit is off: the test scales the window, and
        # counts every window itself from `arrivals` (and answers 429 as an injected fault).
        self.account = sandbox_account_ensure(name=f"Bulk {api_key[-12:]}", api_key=api_key)
        self.account.rate_limit_per_minute = 0
        self.account.save(update_fields=["rate_limit_per_minute"])
        self.number = self.account.verified_numbers[0]["number"]
        # Monotonic times requests reached the sandbox's API: every call, and the creates.
        self.arrivals: list[float] = []
        self.creates: list[float] = []
        self.faults: list[tuple[float, str]] = []  # (monotonic time answered, kind)
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        self.lock = threading.Lock()

    def hold(self, *, kind: str, held: threading.Event, release: threading.Event) -> None:
        """A call meeting fault `kind` sets `held`, then waits for `release` before going on."""
        self.holds[kind] = (held, release)

    @staticmethod
    def fault_kind(account) -> str:
        """The name FAULTS gives the fault `account` is set to (read from the call's own copy)."""
        if account.forced_status:
            return str(account.forced_status)
        if account.drop_connection:
            return "drop"
        if account.create_then_timeout:
            return "lost"
        if account.latency_ms == 1:
            return "kill"
        return "other"

    def arrived(self, sender, environ, **kwargs):
        now = time.monotonic()
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/sandbox/api/v1/"):
            return
        with self.lock:
            self.arrivals.append(now)
            if environ.get("REQUEST_METHOD") == "POST" and path == "/sandbox/api/v1/sip-trunks/":
                self.creates.append(now)

    def create_calls(self) -> int:
        with self.lock:
            return len(self.creates)

    def inject(self, **faults) -> None:
        """The next create call (only that one) gets `faults` (SandboxAccount's fault fields)."""
        from trunks.sandbox.models import SandboxAccount
        from trunks.sandbox.services import sandbox_faults_set

        defaults = {
            f.name: f.get_default()
            for f in SandboxAccount._meta.get_fields()
            if f.name in SandboxAccount.FAULT_FIELDS
        }
        sandbox_faults_set(account=self.account, **{**defaults, **faults, "fault_remaining": 1})

    def injected_taken(self) -> bool:
        """Whether the fault set by inject() has met its call (the sandbox counts it down)."""
        self.account.refresh_from_db()
        return self.account.fault_remaining == 0 or not self.account.has_faults

    def trunks(self):
        from trunks.sandbox.models import SandboxTrunk

        return list(SandboxTrunk.objects.filter(account=self.account))


@pytest.fixture
def sandbox_upstream(live_server, settings, monkeypatch):
    """Start the sandbox (see SandboxUpstream); its create calls are logged until the test ends."""
    import uuid

    from django.core.signals import request_started

    from tests.isolation import worker_id
    from trunks.sandbox import views

    settings.SANDBOX_ENABLED = True
    upstream = SandboxUpstream(live_server, f"ctsbx_bulk_{worker_id()}_{uuid.uuid4().hex[:12]}")
    answer = views._fault_response

    def fault_response(request, account):
        kind = upstream.fault_kind(account)
        if account.pk == upstream.account.pk and kind in upstream.holds:
            held, release = upstream.holds[kind]
            held.set()
            release.wait(timeout=120)
        response = answer(request, account)
        if account.pk == upstream.account.pk:
            with upstream.lock:
                upstream.faults.append((time.monotonic(), kind))
        return response

    # Only watched: the sandbox answers as it always does (the live server runs in this process).
    monkeypatch.setattr(views, "_fault_response", fault_response)
    # One call before the log starts: the live server's first request imports the URLconf and
    # views, which on a busy machine can outlast the (scaled) read timeout.
    import urllib.request

    warm = urllib.request.Request(
        f"{upstream.url}/balance/", headers={"X-Crazytel-Api-Key": upstream.api_key}
    )
    with urllib.request.urlopen(warm, timeout=60) as response:
        assert response.status == 200
    request_started.connect(upstream.arrived, dispatch_uid=f"bulk-sandbox-{id(upstream)}")
    yield upstream
    request_started.disconnect(dispatch_uid=f"bulk-sandbox-{id(upstream)}")
