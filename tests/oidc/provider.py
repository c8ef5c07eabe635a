"""Start and stop the test OpenID Connect provider (tests/oidc/provider/server.js, a real
panva/oidc-provider) on loopback, and drive its test-only admin endpoints.

    with OidcTestProvider(redirect_uris=[...], post_logout_redirect_uris=[...]) as op:
        op.issuer           # http://127.0.0.1:<free port>
        op.set_user("u-alice", groups=["voice-alpha"])
        op.inject_fault("expired")   # the next ID token comes back expired

Node.js 20.19+ and npm must be on PATH (.ci/run installs Debian's nodejs and npm); node_modules is
installed with `npm ci` from the pinned package-lock.json the first time it is missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
START_DEADLINE = 90.0  # seconds for node to listen and serve discovery (a loaded machine is slow)
# A start normally takes under a second (0.6 s median, 0.9 s at most in 25 starts beside two busy
# loops). Once in a while, on a loaded machine, node said nothing for the whole deadline (seen under
# `make test` with three workers and a busy loop, stderr empty): a first attempt that has not said
# it listens within this long is taken as stuck and a new process is started, once.
FIRST_ATTEMPT_DEADLINE = 20.0
INSTALL_TIMEOUT = 300.0

CLIENT_ID = "crazytel-portal"
CLIENT_SECRET = "test-client-secret-not-for-production"


class ProviderUnavailable(RuntimeError):
    """Node.js or the provider's packages are missing, or the provider did not come up."""


@dataclass
class TestUser:
    __test__ = False  # a person at the provider, not a test class for pytest to collect

    sub: str
    username: str
    email: str
    email_verified: bool = True
    groups: list[str] = field(default_factory=list)
    password: str = "provider-password-1"
    disabled: bool = False

    def as_config(self) -> dict:
        return dict(self.__dict__)


NODE_MINIMUM = (20, 19)


def _installed() -> bool:
    """node_modules holds what package-lock.json pins (npm ci writes its own copy of the lock)."""
    installed = PROVIDER_DIR / "node_modules" / ".package-lock.json"
    lock = PROVIDER_DIR / "package-lock.json"
    return installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime


def node_check(node: str) -> None:
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    parts = tuple(int(p) for p in version.lstrip("v").split(".")[:2] if p.isdigit())
    if parts < NODE_MINIMUM:
        raise ProviderUnavailable(
            f"The test OIDC provider (oidc-provider 9) needs Node.js 20.19 or newer; found {version!r}."
        )


def node_modules_ensure() -> None:
    """`npm ci` from the lock file when node_modules is missing or older than the lock (once,
    whatever runs in parallel)."""
    if _installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ProviderUnavailable("npm is not installed (Debian: apt-get install nodejs npm).")
    lock_path = PROVIDER_DIR / ".npm-ci.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():
            return
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--omit=dev"],
            cwd=PROVIDER_DIR,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise ProviderUnavailable(f"npm ci failed:\n{result.stdout}\n{result.stderr}")


class OidcTestProvider:
    def __init__(
        self,
        *,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str],
        users: list[TestUser] | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.users = {user.sub: user for user in users or []}
        self.admin_token = secrets.token_urlsafe(24)
        self._config = {
            "port": 0,
            "admin_token": self.admin_token,
            "clients": [
                {
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "client_name": "Crazytel trunk portal",
                    "redirect_uris": redirect_uris,
                    "post_logout_redirect_uris": post_logout_redirect_uris,
                }
            ],
            "users": [user.as_config() for user in self.users.values()],
        }
        self.issuer = ""
        self._process: subprocess.Popen | None = None
        self._config_dir: tempfile.TemporaryDirectory | None = None

    # --- Life cycle ----------------------------------------------------------------------------

    def start(self) -> OidcTestProvider:
        node = shutil.which("node")
        if node is None:
            raise ProviderUnavailable("Node.js is not installed (Debian: apt-get install nodejs).")
        node_check(node)
        node_modules_ensure()
        try:
            self._start(node, FIRST_ATTEMPT_DEADLINE)
        except ProviderUnavailable as first:
            try:
                self._start(node, START_DEADLINE)
            except ProviderUnavailable as second:
                raise ProviderUnavailable(f"{second} (first attempt: {first})") from second
        return self

    def _start(self, node: str, seconds: float) -> None:
        self._config_dir = tempfile.TemporaryDirectory(prefix="oidc-provider-")
        config_path = Path(self._config_dir.name) / "config.json"
        config_path.write_text(json.dumps(self._config))
        self._process = subprocess.Popen(
            [node, str(PROVIDER_DIR / "server.js"), str(config_path)],
            cwd=PROVIDER_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_ENV": "test"},
        )
        deadline = time.monotonic() + seconds
        self.issuer = self._read_issuer(deadline)
        self._wait_for_discovery(deadline)

    def _read_issuer(self, deadline: float) -> str:
        assert self._process is not None and self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    break
                if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = self._process.stdout.readline()
                    if line:
                        return json.loads(line)["issuer"]
        reason = self._stopped_with_stderr()
        raise ProviderUnavailable(f"The test OIDC provider did not start: {reason}")

    def _wait_for_discovery(self, deadline: float) -> None:
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                response = requests.get(url, timeout=2)
                if response.status_code == 200 and response.json().get("issuer") == self.issuer:
                    return
            # Poll, bounded by the deadline: the server said it listens, discovery follows at once.
            time.sleep(0.05)
        reason = self._stopped_with_stderr()
        raise ProviderUnavailable(f"The test OIDC provider never served discovery: {reason}")

    def _stopped_with_stderr(self) -> str:
        """Stop the process; how it ended and the end of what it wrote on stderr."""
        process = self._process
        running = process is not None and process.poll() is None
        if process is not None and running:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        stderr = ""
        if process is not None and process.stderr is not None and process.poll() is not None:
            stderr = process.stderr.read()[-2000:]
        how = "still running at the deadline" if running else f"exited ({process.returncode})"
        self.stop()
        return f"{how}; stderr: {stderr.strip() or '(empty)'}"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._process is not None:
            for stream in (self._process.stdout, self._process.stderr):
                if stream is not None:
                    stream.close()
        self._process = None
        if self._config_dir is not None:
            self._config_dir.cleanup()
            self._config_dir = None

    def __enter__(self) -> OidcTestProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- The test-only admin endpoints ---------------------------------------------------------

    def _admin(self, path: str, payload: dict) -> dict:
        response = requests.post(
            f"{self.issuer}{path}",
            json=payload,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()

    def set_user(self, sub: str, **changes) -> dict:
        """Change a person at the provider between sign-ins (groups, disabled, email, …)."""
        return self._admin(f"/test-admin/users/{sub}", changes)

    def inject_fault(self, fault: str | None) -> None:
        """The next token response's ID token: "tamper", "audience", "expired" or "issuer"."""
        self._admin("/test-admin/fault", {"fault": fault})

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"
