"""The one module that talks to Crazytel's REST API over HTTP (see ../shared/crazytel-api.md).

Every upstream outcome becomes one of the typed errors of `errors`, each with a message fit for a
person; `parsing` reads every response shape the contract lists. The API key and a trunk's password
never appear in a log record, an error's str/repr, or the traceback locals Django's error reports
show (the methods holding them are `sensitive_variables`). Knows nothing of tenants or the database:
`trunks.tenants.upstream` builds a client for a tenant.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from urllib3.exceptions import (
    DecodeError,
    ProtocolError,
    ReadTimeoutError,
)

import portal
from portal.logs import current_request_id
from portal.metrics import upstream_call_observe, upstream_outcome_for_status

from .answers import attribute_numbers, parse_json_body, status_error, transport_error
from .errors import (
    CrazytelError,
    NumberRejected,
    OutcomeUnknown,
    RateLimited,
    RejectedKey,
    TrunkNotFound,
    Unreachable,
    UpstreamError,
)
from .parsing import (
    Balance,
    CreatedTrunk,
    UpdatedTrunk,
    VerifiedNumber,
    parse_balance,
    parse_created_trunk,
    parse_retry_after,
    parse_updated_trunk,
    parse_verified_numbers,
    redact,
)
from .transport import Deadline, call_deadline, send, shared_session, socket_of

logger = logging.getLogger(__name__)

USER_AGENT = f"crazytel-trunk-portal/{portal.__version__}"
API_KEY_HEADER = "x-crazytel-api-key"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 20.0
# A body bigger than this is not a Crazytel answer (and must not fill our memory).
MAX_BODY_BYTES = 1024 * 1024


class RateLimiter(Protocol):
    """What the client needs of a rate limiter (trunks.crazytel.ratelimit.RateLimiter)."""

    def acquire(self, *, write: bool = False) -> None: ...

    def note_retry_after(self, seconds: float | None) -> None: ...

    def note_result(self, *, server_error: bool) -> None: ...


class CrazytelClient:
    """Crazytel's REST API for one account (one API key).

    Reads are retried once when the request surely never arrived (`Unreachable`); a create is
    never retried. Every request passes through the optional shared rate limiter.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        session: requests.Session | None = None,
        rate_limiter: RateLimiter | None = None,
    ):
        self.base_url = (base_url or "").strip().rstrip("/")
        self._api_key = (api_key or "").strip()
        self.connect_timeout = float(
            connect_timeout
            if connect_timeout is not None
            else getattr(settings, "CRAZYTEL_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
        )
        self.read_timeout = float(
            read_timeout
            if read_timeout is not None
            else getattr(settings, "CRAZYTEL_TIMEOUT", DEFAULT_READ_TIMEOUT)
        )
        self.session = session if session is not None else shared_session()
        self.rate_limiter = rate_limiter

    def __repr__(self) -> str:
        return f"<CrazytelClient {self.base_url}>"

    __str__ = __repr__

    # Copying or pickling a client must not carry the key somewhere it could be printed.
    def __reduce__(self):
        raise TypeError("A CrazytelClient holds an API key and cannot be pickled.")

    # -- calls --

    def verified_numbers(self) -> list[VerifiedNumber]:
        """The account's verified numbers (caller ID and SMS sender candidates), normalised."""
        data, request_id, status = self._call(
            "GET", "/account/verified-cli/", retry_unreachable=True
        )
        return parse_verified_numbers(data, request_id, status)

    @sensitive_variables()
    def create_sip_trunk(self, payload: dict) -> CreatedTrunk:
        """Create a SIP trunk. Never retried: a lost answer is an `OutcomeUnknown`."""
        # The key travels in the header only; never in the body, where it would reach logs.
        body = {k: v for k, v in payload.items() if k not in ("api_key", "x-crazytel-api-key")}
        password = body.get("password")
        secrets = (password,) if isinstance(password, str) else ()
        try:
            data, request_id, status = self._call(
                "POST", "/sip-trunks/", body=body, secrets=secrets, retry_unreachable=False
            )
        except NumberRejected as exc:
            attribute_numbers(exc, body)
            raise
        return parse_created_trunk(data, request_id, status, (*secrets, self._api_key))

    @sensitive_variables()
    def update_sip_trunk(self, trunk_id: str, changes: dict) -> UpdatedTrunk:
        """Change a trunk (PATCH /sip-trunks/{trunk_id}): send only `changes`. Never retried
        automatically, though sending the same values again is harmless: a lost answer is an
        `OutcomeUnknown`. A 404 answered in JSON is `TrunkNotFound` (an HTML 404 page is a wrong
        base URL, as elsewhere). An empty 200 or a 204 means the sent values applied."""
        trunk_id = str(trunk_id or "").strip()
        if not trunk_id:
            raise ValueError("a trunk id is needed to change a trunk")
        body = {k: v for k, v in changes.items() if k not in ("api_key", "x-crazytel-api-key")}
        password = body.get("password")
        secrets = (password,) if isinstance(password, str) else ()
        path = f"/sip-trunks/{quote(trunk_id, safe='')}"
        try:
            data, request_id, status = self._call(
                "PATCH", path, body=body, secrets=secrets, retry_unreachable=False, empty_ok=True
            )
        except NumberRejected as exc:
            attribute_numbers(exc, body)
            raise
        except UpstreamError as exc:
            if exc.status == 404 and "HTML page" not in exc.message:
                raise TrunkNotFound(
                    TrunkNotFound.default_message, status=404, request_id=exc.request_id
                ) from None
            raise
        return parse_updated_trunk(data, request_id, status, (*secrets, self._api_key))

    def balance(self) -> Balance:
        """The account code and balance: a cheap, read-only connection check."""
        data, request_id, status = self._call("GET", "/balance/", retry_unreachable=True)
        return parse_balance(data, request_id, status)

    # -- transport --

    @sensitive_variables()
    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        secrets: tuple[str, ...] = (),
        retry_unreachable: bool,
        empty_ok: bool = False,
    ) -> tuple[Any, str, int]:
        secrets = (*secrets, self._api_key)
        if retry_unreachable:
            try:
                return self._send(method, path, body=body, secrets=secrets, empty_ok=empty_ok)
            except Unreachable:
                # Surely never arrived, and a read: one more try does no harm.
                logger.info("crazytel %s %s unreachable; retrying once", method, path)
            time.sleep(0.2)
        return self._send(method, path, body=body, secrets=secrets, empty_ok=empty_ok)

    @sensitive_variables()
    def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict | None,
        secrets: tuple[str, ...],
        empty_ok: bool = False,
    ) -> tuple[Any, str, int]:
        # The portal request's id (the one its audit record keeps), so Crazytel's support can
        # find the call; a fresh one outside a request (a command, a task).
        request_id = current_request_id() or uuid.uuid4().hex
        url = f"{self.base_url}{path}"
        endpoint = endpoint_template(path)
        if not self._api_key or not self._api_key.isascii() or not self._api_key.isprintable():
            _call_observe(method, endpoint, None, "refused_locally", 0.0, request_id)
            raise RejectedKey(
                "This tenant's API key is missing or holds characters Crazytel cannot accept. "
                "An admin must set it again.",
                request_id=request_id,
            )
        if self.rate_limiter is not None:
            try:
                # Creates and changes may use the tokens reserved for writes; reads may not.
                self.rate_limiter.acquire(write=method not in ("GET", "HEAD"))
            except RateLimited:
                _call_observe(method, endpoint, None, "refused_locally", 0.0, request_id)
                raise
        headers = {
            API_KEY_HEADER: self._api_key,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Request-ID": request_id,
        }
        data = None
        if body is not None:
            try:
                data = json.dumps(body, separators=(",", ":"), default=_json_default).encode()
            except (TypeError, ValueError):
                raise ValueError("The trunk payload holds a value that is not JSON.") from None
            headers["Content-Type"] = "application/json"

        started = time.monotonic()
        error: CrazytelError | None = None
        status = None
        text = ""
        content_type = ""
        retry_after_header = None
        location = ""
        deadline = Deadline(started + self.read_timeout)
        deadline_token = call_deadline.set(deadline)
        try:
            with send(
                self.session,
                method,
                url,
                headers=headers,
                body=data,
                timeout=(self.connect_timeout, self.read_timeout),
            ) as response:
                status = response.status_code
                content_type = response.headers.get("Content-Type", "")
                retry_after_header = response.headers.get("Retry-After")
                location = response.headers.get("Location", "")
                text = self._read_body(response, started)
        except requests.RequestException as exc:
            if status is None and deadline.cut:
                error = OutcomeUnknown(
                    f"Crazytel did not answer within {self.read_timeout:g} seconds after the "
                    "request was sent: it may or may not have taken effect.",
                    request_id=request_id,
                )
            elif status is None:
                error = transport_error(exc, request_id)
            else:
                # The status line came back, then the body was lost: it did arrive.
                error = OutcomeUnknown(
                    f"Crazytel answered {status} but the rest of the answer was lost: the request "
                    "may or may not have taken effect.",
                    status=status,
                    request_id=request_id,
                )
        except _BodyTooSlow:
            error = OutcomeUnknown(
                "Crazytel started answering but did not finish within "
                f"{self.read_timeout:g} seconds; the request may or may not have taken effect.",
                status=status,
                request_id=request_id,
            )
        except _BodyTooLarge:
            error = UpstreamError(
                f"Crazytel answered {status} with a body larger than {MAX_BODY_BYTES} bytes.",
                status=status,
                request_id=request_id,
            )
        finally:
            call_deadline.reset(deadline_token)
        elapsed_ms = (time.monotonic() - started) * 1000

        if error is not None and status is None:
            # No response at all: the request did not arrive, or its answer was lost.
            if self.rate_limiter is not None:
                self.rate_limiter.note_result(server_error=True)
            outcome = (
                "unreachable"
                if isinstance(error, Unreachable)
                else "refused_locally"
                if isinstance(error, RejectedKey)
                else "unknown"
            )
            _call_observe(method, endpoint, None, outcome, elapsed_ms, request_id)
            raise error

        if self.rate_limiter is not None:
            if status == 429:
                self.rate_limiter.note_retry_after(parse_retry_after(retry_after_header))
            self.rate_limiter.note_result(server_error=status >= 500)
        outcome = "unknown" if isinstance(error, OutcomeUnknown) else None
        _call_observe(
            method,
            endpoint,
            status,
            outcome or upstream_outcome_for_status(status),
            elapsed_ms,
            request_id,
        )
        if error is not None:
            raise error
        text = redact(text, secrets)
        if 200 <= status < 300:
            if empty_ok and not text.strip():
                return None, request_id, status
            return parse_json_body(text, status, content_type, request_id), request_id, status
        raise status_error(status, text, content_type, retry_after_header, location, request_id)

    def _read_body(self, response: requests.Response, started: float) -> str:
        """The body, within the read timeout overall on the wall clock, and a size cap (the
        status line and headers have theirs in `transport.DeadlineHeadMixin`).

        Each read waits at most the time left before the deadline (the socket's timeout is set to
        it before every read) and takes whatever has arrived, so an upstream dripping one byte a
        second cannot hold the worker past the deadline.
        """
        deadline = started + self.read_timeout
        sock = socket_of(response)
        raw = response.raw
        chunks = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _BodyTooSlow
            if sock is not None and sock.fileno() != -1:
                # (Closed once the whole body is in: the next read returns the rest at once.)
                sock.settimeout(remaining)
            try:
                chunk = raw.read1(16384)
            except (ReadTimeoutError, TimeoutError):
                raise _BodyTooSlow from None
            except (ProtocolError, DecodeError, OSError) as exc:
                raise requests.exceptions.ConnectionError(exc) from None
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")


# A path segment that names one thing: all digits, or 4+ characters holding a digit (a uuid, CT123).
_ID_SEGMENT = re.compile(r"^\d+$|^(?=.*\d)[\w.-]{4,}$")


def endpoint_template(path: str) -> str:
    """The path with its ids replaced (`/sip-trunks/{id}/`): a bounded label for logs and metrics."""
    path = urlsplit(path).path or "/"
    return "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/"))


def _call_observe(
    method: str,
    endpoint: str,
    status: int | None,
    outcome: str,
    elapsed_ms: float,
    request_id: str,
) -> None:
    """One structured line and the metrics for one call (or one refused before it was sent)."""
    upstream_call_observe(endpoint=endpoint, outcome=outcome, seconds=elapsed_ms / 1000)
    logger.log(
        logging.INFO if outcome == "ok" else logging.WARNING,
        "crazytel %s %s -> %s (%s) in %.0f ms",
        method,
        endpoint,
        status if status is not None else "-",
        outcome,
        elapsed_ms,
        extra={
            "upstream_method": method,
            "endpoint": endpoint,
            "status": status,
            "duration_ms": round(elapsed_ms, 1),
            "outcome": outcome,
            "request_id": request_id,
        },
    )


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


class _BodyTooSlow(Exception):
    pass


class _BodyTooLarge(Exception):
    pass
