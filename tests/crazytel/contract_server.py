"""An independent Crazytel stand-in, written only from ../shared/crazytel-api.md (standard library).

It answers in other tolerated shapes than the sandbox — numbers as
{"verified_numbers": [{"did": "+61 2 9876 5432", "description": "..."}]}, validation errors as
FastAPI's detail list, a create answer that echoes the password — and records every request it
receives, so tests can check exactly what the client sends.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None


class ContractServer:
    """Crazytel per the contract: four endpoints (create and change a trunk), 60 requests/minute, scripted faults."""

    def __init__(self, *, api_key: str, numbers: list[tuple[str, str]]):
        self.api_key = api_key
        self.numbers = numbers  # (did as Crazytel writes it, description)
        self.limit_per_minute = 60
        self.requests: list[Recorded] = []
        self.trunks: dict[str, dict] = {}
        self._script: deque = deque()
        self._hits: deque = deque()
        self._lock = threading.Lock()
        self._busy = threading.Semaphore(0)
        self._httpd: ThreadingHTTPServer | None = None

    # -- control --

    def start(self) -> ContractServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default) for the loop.
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/api/v1"

    def then(self, action: str, **kwargs) -> None:
        """Script the next request's answer: "status" (code, body, headers), "html" (code),
        "drop", "malformed", "bad_username", "latency" (seconds), "timeout_after_create" (seconds,
        also after a change), "no_content" (a change answered 204)."""
        self._script.append((action, kwargs))

    def verified_digits(self) -> set[str]:
        return {re.sub(r"[+\s-]", "", did) for did, _ in self.numbers}


class _Handler(BaseHTTPRequestHandler):
    owner: ContractServer
    protocol_version = "HTTP/1.1"
    server_version = "contract-crazytel/1"

    def log_message(self, format, *args):  # quiet: tests read `owner.requests`
        pass

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_PATCH(self):
        self._handle()

    # -- plumbing --

    def _send(
        self, status: int, body, headers: dict | None = None, content_type="application/json"
    ):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except OSError:
            self.close_connection = True  # the caller has gone (timed out)

    def _detail(self, status: int, message, headers=None):
        self._send(status, {"detail": message}, headers)

    def _handle(self):
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        with owner._lock:
            owner.requests.append(
                Recorded(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            action, kwargs = owner._script.popleft() if owner._script else (None, {})

        key = self.headers.get("x-crazytel-api-key")
        if not key:
            return self._detail(401, "Not authenticated")
        if key != owner.api_key:
            return self._detail(401, "Invalid API key")

        now = time.monotonic()
        with owner._lock:
            while owner._hits and owner._hits[0] <= now - 60:
                owner._hits.popleft()
            if len(owner._hits) >= owner.limit_per_minute:
                wait = int(60 - (now - owner._hits[0])) + 1
                return self._detail(429, "Too Many Requests", {"Retry-After": str(wait)})
            owner._hits.append(now)

        if action == "drop":
            # No answer at all: shut the socket and end the exchange.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if action == "status":
            payload = kwargs.get("body", {"detail": "Internal Server Error"})
            raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            ctype = "text/plain" if isinstance(payload, str) else "application/json"
            return self._send(kwargs["code"], raw, kwargs.get("headers"), ctype)
        if action == "html":
            code = kwargs.get("code", 502)
            page = (
                f"<html><head><title>{code} Bad Gateway</title></head>"
                f"<body><h1>{code} Bad Gateway</h1><p>cloudflare</p></body></html>"
            )
            return self._send(code, page.encode(), content_type="text/html")
        if action == "malformed":
            return self._send(200, b'{"username": "CT1', content_type="application/json")
        if action == "latency":
            time.sleep(kwargs["seconds"])

        if self.command == "GET" and path == "/api/v1/account/verified-cli/":
            return self._send(
                200,
                {
                    "verified_numbers": [
                        {"did": did, "description": description}
                        for did, description in owner.numbers
                    ],
                    "total": len(owner.numbers),
                },
            )
        if self.command == "GET" and path == "/api/v1/balance/":
            return self._send(200, {"account_code": "0000000", "balance": 2405.44})
        if self.command == "POST" and path == "/api/v1/sip-trunks/":
            return self._create(body, action, kwargs)
        match = re.fullmatch(r"/api/v1/sip-trunks/([^/]+)", path)
        if self.command == "PATCH" and match:
            return self._update(match.group(1), body, action, kwargs)
        return self._detail(404, "Not Found")

    def _update(self, trunk_id: str, body: bytes, action, kwargs):
        """PATCH /sip-trunks/{trunk_id}, per the contract: a partial update of the documented
        fields, the same rules as create, `id` and `username` fixed, 404 for an unknown id."""
        owner = self.owner
        with owner._lock:
            trunk = next((t for t in owner.trunks.values() if t["id"] == trunk_id), None)
        if trunk is None:
            return self._detail(404, "Trunk not found")
        try:
            data = json.loads(body)
        except ValueError:
            return self._detail(
                422, [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}]
            )
        if not isinstance(data, dict):
            return self._detail(
                422,
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ["body"],
                        "msg": "Input should be an object",
                    }
                ],
            )
        errors = []
        if "password" in data:
            password = data["password"]
            if not (
                isinstance(password, str)
                and len(password) >= 8
                and re.search(r"[A-Z]", password)
                and re.search(r"[a-z]", password)
                and re.search(r"\d", password)
            ):
                errors.append(
                    {
                        "type": "value_error",
                        "loc": ["body", "password"],
                        "msg": "Value error, Password must be 8+ characters with upper, lower, digit",
                    }
                )
        for name in ("enabled", "hide_caller_id", "softphone_show_balance", "softphone_sync_sms"):
            if name in data and not isinstance(data[name], bool):
                errors.append(
                    {
                        "type": "bool_type",
                        "loc": ["body", name],
                        "msg": "Input should be a valid boolean",
                    }
                )
        if errors:
            return self._detail(422, errors)
        verified = owner.verified_digits()
        if "caller_id_number" in data and (
            re.sub(r"[+\s-]", "", str(data["caller_id_number"])) not in verified
        ):
            return self._detail(400, "Caller ID not verified")
        sms = data.get("sms_sender")
        if sms:
            if not str(sms).startswith("614"):
                return self._detail(400, "Invalid SMS sender format: must start with 614")
            if sms not in verified:
                return self._detail(400, "SMS sender not verified")
        documented = {
            "enabled", "password", "area_code", "caller_id_number", "description",
            "hide_caller_id", "sms_sender", "softphone_show_balance", "softphone_sync_sms",
        }  # fmt: skip
        with owner._lock:
            trunk.update({k: v for k, v in data.items() if k in documented})
            answer = dict(trunk)
        if action == "timeout_after_create":
            time.sleep(kwargs["seconds"])
        if action == "no_content":
            return self._send(204, b"")
        return self._send(200, answer)

    def _create(self, body: bytes, action, kwargs):
        owner = self.owner
        try:
            data = json.loads(body)
        except ValueError:
            return self._detail(
                422, [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}]
            )
        if not isinstance(data, dict):
            return self._detail(
                422,
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ["body"],
                        "msg": "Input should be an object",
                    }
                ],
            )
        errors = []
        password = data.get("password")
        if not isinstance(password, str):
            errors.append({"type": "missing", "loc": ["body", "password"], "msg": "Field required"})
        else:
            for ok, msg in (
                (len(password) >= 8, "must be at least 8 characters long"),
                (re.search(r"[A-Z]", password), "must contain at least 1 uppercase letter"),
                (re.search(r"[a-z]", password), "must contain at least 1 lowercase letter"),
                (re.search(r"\d", password), "must contain at least 1 number"),
            ):
                if not ok:
                    errors.append(
                        {
                            "type": "value_error",
                            "loc": ["body", "password"],
                            "msg": f"Value error, Password {msg}",
                            "input": password,
                        }
                    )
        if not isinstance(data.get("caller_id_number"), str):
            errors.append(
                {"type": "missing", "loc": ["body", "caller_id_number"], "msg": "Field required"}
            )
        if errors:
            return self._detail(422, errors)
        verified = owner.verified_digits()
        if re.sub(r"[+\s-]", "", data["caller_id_number"]) not in verified:
            return self._detail(400, "Caller ID not verified")
        sms = data.get("sms_sender")
        if sms:
            if not sms.startswith("614"):
                return self._detail(400, "Invalid SMS sender format: must start with 614")
            if sms not in verified:
                return self._detail(400, "SMS sender not verified")
        if action == "bad_username":
            return self._send(200, {"id": str(uuid.uuid4()), "name": "trunk-1", "status": "active"})

        trunk = {
            "id": str(uuid.uuid4()),
            "username": f"CT{secrets.randbelow(10**6):06d}",
            "password": password,
            "enabled": data.get("enabled", True),
            "caller_id_number": data["caller_id_number"],
            "sms_sender": sms,
            "description": data.get("description"),
        }
        with owner._lock:
            owner.trunks[trunk["username"]] = trunk
        if action == "timeout_after_create":
            time.sleep(kwargs["seconds"])
        return self._send(200, trunk)
