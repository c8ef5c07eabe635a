"""The real-worker fixtures (tests/tasks/conftest.py) and a fake Crazytel at the HTTP edge that
records every create call it receives, for comparing with what the job says it did."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.tasks.conftest import shared_database, sqlite_template, start_worker  # noqa: F401

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
        thread = threading.Thread(target=server.serve_forever, daemon=True)
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
