"""The one module that talks to Crazytel's REST API (see ../shared/crazytel-api.md).

Every upstream outcome becomes one of the typed errors below, each with a message fit for a person.
Tolerant of every response shape the contract lists; anything else is an `UpstreamError`.
The API key and a trunk's password never appear in a log record, an error's str/repr, or the
traceback locals Django's error reports show (the methods holding them are `sensitive_variables`).
"""

from __future__ import annotations

import email.utils
import http.cookiejar
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

import portal

logger = logging.getLogger(__name__)

USER_AGENT = f"crazytel-trunk-portal/{portal.__version__}"
API_KEY_HEADER = "x-crazytel-api-key"
# ASCII digits only: \d would also take other scripts' digits.
USERNAME_RE = re.compile(r"^CT[0-9]{6}$")
NON_FIELD = "__all__"

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 20.0
# A body bigger than this is not a Crazytel answer (and must not fill our memory).
MAX_BODY_BYTES = 1024 * 1024
# How much of an unexpected body a message may quote.
SNIPPET_CHARS = 200
RETRY_AFTER_MAX = 3600.0

NUMBER_KEYS = (
    "number",
    "cli",
    "caller_id",
    "caller_id_number",
    "phone_number",
    "did",
    "did_number",
)
LABEL_KEYS = ("label", "description", "name", "nickname", "alias", "note", "notes")
LIST_WRAPPER_KEYS = ("results", "data", "items", "numbers", "verified_cli", "verified_numbers")
OBJECT_WRAPPER_KEYS = ("data", "result", "trunk", "sip_trunk")
TRUNK_ID_KEYS = ("id", "trunk_id", "uuid")
# Fields whose name appears in an upstream message, in the order they are looked for.
FIELD_NAMES = (
    "password",
    "caller_id_number",
    "sms_sender",
    "area_code",
    "description",
    "enabled",
    "hide_caller_id",
    "softphone_show_balance",
    "softphone_sync_sms",
)
_SECRET_KEY_PARTS = ("password", "passwd", "passphrase", "secret", "token", "api_key", "apikey")
_SECRET_KEY_EXACT = {"pass", "pwd", "key", "auth", "authorization", "credential", "credentials"}


# --- Errors -----------------------------------------------------------------------------------


class CrazytelError(Exception):
    """Root of every upstream outcome that is not a success.

    `message` is for a person; `status` the HTTP status (None when there was no response);
    `field_errors` maps form field names (or "__all__") to messages; `category` names the class.
    """

    category = "error"
    default_message = "Crazytel could not complete the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        field_errors: dict[str, list[str]] | None = None,
        request_id: str | None = None,
    ):
        self.message = message or self.default_message
        self.status = status
        self.field_errors = {k: list(v) for k, v in (field_errors or {}).items()}
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"

    # Exceptions pickle through their args; keep the keyword attributes too.
    def __reduce__(self):
        return (_rebuild_error, (type(self), self.__dict__.copy()))


def _rebuild_error(cls, state):
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class RejectedKey(CrazytelError):
    category = "rejected_key"
    default_message = "Crazytel rejected this tenant's API key. An admin must check or replace it."


class ValidationFailed(CrazytelError):
    category = "validation"
    default_message = "Crazytel refused the values sent."


class NumberRejected(CrazytelError):
    category = "number_rejected"
    default_message = "Crazytel refused the caller ID or SMS sender number."


class RateLimited(CrazytelError):
    category = "rate_limited"
    default_message = "Crazytel is busy (too many requests). Try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        if message is None and retry_after is not None:
            message = (
                "Crazytel is busy (too many requests). "
                f"Try again in {max(1, round(retry_after))} seconds."
            )
        # status stays None when the portal's own limiter refused before asking Crazytel.
        super().__init__(message, **kwargs)


class UpstreamError(CrazytelError):
    category = "upstream"
    default_message = "Crazytel answered with an error or with something it should not have sent."


class Unreachable(CrazytelError):
    category = "unreachable"
    default_message = "Crazytel could not be reached. Nothing was sent; try again."


class OutcomeUnknown(CrazytelError):
    category = "unknown"
    default_message = (
        "The request reached Crazytel but no answer came back: it may or may not have taken effect."
    )


# --- Results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedNumber:
    number: str
    label: str = ""


@dataclass(frozen=True)
class CreatedTrunk:
    username: str
    trunk_id: str | None
    # The upstream response with every password-like key removed.
    response: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Balance:
    account_code: str
    balance: Decimal


class RateLimiter(Protocol):
    """What the client needs of trunks.ratelimit's shared limiter."""

    def acquire(self) -> None: ...

    def note_retry_after(self, seconds: float | None) -> None: ...

    def note_result(self, *, server_error: bool) -> None: ...


# --- Helpers: secrets, parsing ------------------------------------------------------------------


def is_secret_key(key: Any) -> bool:
    """A response key whose value may be a credential (stripped before anything is kept)."""
    if not isinstance(key, str):
        return False
    k = key.lower().replace("-", "_")
    return (
        k in _SECRET_KEY_EXACT
        or any(part in k for part in _SECRET_KEY_PARTS)
        or k.endswith(("_pass", "_pwd", "_key"))
    )


def strip_secrets(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """`value` without password-like keys (recursively) and with known secrets blanked out."""
    if isinstance(value, dict):
        return {
            k: strip_secrets(v, secrets)
            for k, v in value.items()
            if not is_secret_key(k) and not (isinstance(v, str) and v in secrets and v)
        }
    if isinstance(value, list):
        return [strip_secrets(v, secrets) for v in value]
    if isinstance(value, str):
        return _redact(value, secrets)
    return value


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "[redacted]")
    return text


def normalise_number(raw: Any) -> str | None:
    """Digits only: '+61 2 9876-5432' → '61298765432'. None when it is not a phone number."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    text = str(raw).strip()
    for ch in "+ -().\u00a0\t":
        text = text.replace(ch, "")
    if not text.isascii() or not text.isdigit() or not 6 <= len(text) <= 15:
        return None
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent/garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


class _HTMLText(HTMLParser):
    """The title and visible text of an HTML error page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.text: list[str] = []
        self._in_title = False
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip and data.strip():
            self.text.append(data.strip())


def _html_summary(text: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception:
        return ""
    summary = " ".join(parser.title.split()) or " ".join(" ".join(parser.text).split())
    return _shorten(summary)


def _shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _looks_like_html(text: str, content_type: str) -> bool:
    head = text.lstrip()[:100].lower()
    return "html" in content_type or head.startswith(("<!doctype", "<html", "<head", "<body"))


def _field_from_loc(loc: Any) -> str:
    """FastAPI's `loc` (["body", "password"]) → "password"; a location with no field → "__all__"."""
    if isinstance(loc, str):
        loc = [loc]
    if not isinstance(loc, (list, tuple)):
        return NON_FIELD
    parts = [p for p in loc if isinstance(p, str)]
    for part in parts:
        if part not in ("body", "query", "path", "header", "cookie", "__root__"):
            return part
    return NON_FIELD


def _clean_msg(msg: str) -> str:
    # Pydantic prefixes custom validator messages with "Value error, ".
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    msg = msg.strip()
    return msg[:1].upper() + msg[1:] if msg else msg


@dataclass
class _ErrorBody:
    message: str = ""
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    is_html: bool = False


def parse_error_body(text: str, content_type: str = "") -> _ErrorBody:
    """What an error response says, from any shape the contract lists."""
    result = _ErrorBody()
    stripped = text.strip()
    if not stripped:
        return result
    try:
        data = json.loads(stripped)
    except ValueError:
        data = None
    else:
        _read_json_error(data, result)
        return result
    if _looks_like_html(stripped, content_type.lower()):
        result.is_html = True
        result.message = _html_summary(stripped)
        return result
    result.message = _shorten(stripped)
    return result


def _read_json_error(data: Any, result: _ErrorBody, depth: int = 0) -> None:
    if depth > 3:
        return
    if isinstance(data, str):
        result.message = _shorten(data, 500)
        return
    if isinstance(data, list):
        _read_fastapi_detail(data, result)
        return
    if not isinstance(data, dict):
        return
    for key in ("detail", "error", "errors", "message", "msg", "error_description", "title"):
        if key in data and data[key] not in (None, "", [], {}):
            _read_json_error(data[key], result, depth + 1)
            if result.message or result.field_errors:
                return


def _read_fastapi_detail(items: list, result: _ErrorBody) -> None:
    lines = []
    for item in items:
        if isinstance(item, str):
            msg, name = _clean_msg(item), NON_FIELD
        elif isinstance(item, dict):
            raw = item.get("msg") or item.get("message") or item.get("detail")
            if not isinstance(raw, str):
                continue
            msg, name = _clean_msg(raw), _field_from_loc(item.get("loc"))
            # Deliberately never item["input"]: Pydantic echoes the submitted value there.
        else:
            continue
        if not msg:
            continue
        result.field_errors.setdefault(name, []).append(msg)
        lines.append(msg if name == NON_FIELD else f"{name}: {msg}")
    if lines:
        result.message = _shorten("; ".join(lines), 500)


def _number_fields_named(message: str) -> list[str]:
    text = message.lower().replace("-", " ").replace("_", " ")
    found = []
    if "caller id" in text or "callerid" in text or "cli" in text.split() or "caller" in text:
        found.append("caller_id_number")
    if "sms" in text or "sender" in text:
        found.append("sms_sender")
    return found


def _attribute_numbers(error: NumberRejected, body: dict) -> None:
    """A 400 whose message names no field but quotes a number we sent: that number's field."""
    if set(error.field_errors) != {NON_FIELD}:
        return
    message_digits = re.sub(r"[+\s-]", "", error.message)
    named = [
        name
        for name in ("caller_id_number", "sms_sender")
        if (number := normalise_number(body.get(name))) and number in message_digits
    ]
    if named:
        messages = error.field_errors.pop(NON_FIELD)
        for name in named:
            error.field_errors[name] = list(messages)


# --- The shared HTTP session ------------------------------------------------------------------

_session_lock = threading.Lock()
_shared_session: requests.Session | None = None


def _new_session() -> requests.Session:
    session = requests.Session()
    # Connection pooling, and no automatic retries: the client decides what may be retried.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=20, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # A session shared by every tenant must never carry one tenant's cookies to another's call.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def shared_session() -> requests.Session:
    """One pooled session per process, shared by every client (no credentials live on it)."""
    global _shared_session
    if _shared_session is None:
        with _session_lock:
            if _shared_session is None:
                _shared_session = _new_session()
    return _shared_session


# --- The client -------------------------------------------------------------------------------


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
        return _parse_verified_numbers(data, request_id, status)

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
            _attribute_numbers(exc, body)
            raise
        return _parse_created_trunk(data, request_id, status, (*secrets, self._api_key))

    def balance(self) -> Balance:
        """The account code and balance: a cheap, read-only connection check."""
        data, request_id, status = self._call("GET", "/balance/", retry_unreachable=True)
        return _parse_balance(data, request_id, status)

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
    ) -> tuple[Any, str, int]:
        secrets = (*secrets, self._api_key)
        if retry_unreachable:
            try:
                return self._send(method, path, body=body, secrets=secrets)
            except Unreachable:
                # Surely never arrived, and a read: one more try does no harm.
                logger.info("crazytel %s %s unreachable; retrying once", method, path)
            time.sleep(0.2)
        return self._send(method, path, body=body, secrets=secrets)

    @sensitive_variables()
    def _send(
        self, method: str, path: str, *, body: dict | None, secrets: tuple[str, ...]
    ) -> tuple[Any, str, int]:
        request_id = uuid.uuid4().hex
        url = f"{self.base_url}{path}"
        log_path = urlsplit(url).path or path
        if not self._api_key or not self._api_key.isascii() or not self._api_key.isprintable():
            raise RejectedKey(
                "This tenant's API key is missing or holds characters Crazytel cannot accept. "
                "An admin must set it again.",
                request_id=request_id,
            )
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
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
        try:
            with self.session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                status = response.status_code
                content_type = response.headers.get("Content-Type", "")
                retry_after_header = response.headers.get("Retry-After")
                location = response.headers.get("Location", "")
                text = self._read_body(response, started)
        except requests.RequestException as exc:
            if status is None:
                error = _transport_error(exc, request_id)
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
        elapsed_ms = (time.monotonic() - started) * 1000

        if error is not None and status is None:
            # No response at all: the request did not arrive, or its answer was lost.
            if self.rate_limiter is not None:
                self.rate_limiter.note_result(server_error=True)
            logger.warning(
                "crazytel %s %s failed (%s) after %.0f ms [request %s]",
                method,
                log_path,
                error.category,
                elapsed_ms,
                request_id,
            )
            raise error

        if self.rate_limiter is not None:
            if status == 429:
                self.rate_limiter.note_retry_after(parse_retry_after(retry_after_header))
            self.rate_limiter.note_result(server_error=status >= 500)
        logger.log(
            logging.INFO if status < 400 else logging.WARNING,
            "crazytel %s %s -> %s in %.0f ms [request %s]",
            method,
            log_path,
            status,
            elapsed_ms,
            request_id,
        )
        if error is not None:
            raise error
        text = _redact(text, secrets)
        if 200 <= status < 300:
            return _parse_json_body(text, status, content_type, request_id), request_id, status
        raise _status_error(status, text, content_type, retry_after_header, location, request_id)

    def _read_body(self, response: requests.Response, started: float) -> str:
        """The body, within the read timeout overall (not per chunk) and a size cap."""
        deadline = started + self.connect_timeout + self.read_timeout
        chunks = []
        size = 0
        for chunk in response.iter_content(chunk_size=16384):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _BodyTooLarge
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _BodyTooSlow
        raw = b"".join(chunks)
        return raw.decode(response.encoding or "utf-8", errors="replace")


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


class _BodyTooSlow(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


def _transport_error(exc: requests.RequestException, request_id: str) -> CrazytelError:
    """A requests exception → Unreachable (surely not arrived) or OutcomeUnknown (may have)."""
    if isinstance(exc, requests.ConnectTimeout):
        return Unreachable(
            "Crazytel did not accept the connection in time. Nothing was sent; try again.",
            request_id=request_id,
        )
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ),
    ):
        return Unreachable(
            "The Crazytel base URL is not a valid http(s) URL. Nothing was sent.",
            request_id=request_id,
        )
    if isinstance(exc, requests.exceptions.InvalidHeader):
        return RejectedKey(
            "This tenant's API key holds characters Crazytel cannot accept. An admin must set it "
            "again.",
            request_id=request_id,
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return Unreachable(
            "The proxy in front of Crazytel refused the connection. Nothing was sent; try again.",
            request_id=request_id,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return Unreachable(
            "The secure connection to Crazytel could not be set up (TLS error). Nothing was sent.",
            request_id=request_id,
        )
    if isinstance(exc, requests.ReadTimeout):
        return OutcomeUnknown(
            "Crazytel did not answer in time after the request was sent: it may or may not have "
            "taken effect.",
            request_id=request_id,
        )
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError):
            what = (
                "its name could not be resolved"
                if isinstance(reason.reason, NameResolutionError)
                else "the connection was refused"
            )
            return Unreachable(
                f"Crazytel could not be reached ({what}). Nothing was sent; try again.",
                request_id=request_id,
            )
        return OutcomeUnknown(
            "The connection to Crazytel was lost after the request was sent: it may or may not "
            "have taken effect.",
            request_id=request_id,
        )
    return OutcomeUnknown(
        "The exchange with Crazytel failed part-way: the request may or may not have taken effect.",
        request_id=request_id,
    )


def _parse_json_body(text: str, status: int, content_type: str, request_id: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        pass
    if _looks_like_html(text, content_type.lower()):
        page = _html_summary(text)
        what = f"an HTML page ({page})" if page else "an HTML page"
    elif not text.strip():
        what = "an empty body"
    else:
        what = "a body that is not JSON"
    raise UpstreamError(
        f"Crazytel answered {status} with {what} instead of JSON.",
        status=status,
        request_id=request_id,
    )


def _status_error(
    status: int,
    text: str,
    content_type: str,
    retry_after_header: str | None,
    location: str,
    request_id: str,
) -> CrazytelError:
    body = parse_error_body(text, content_type)
    said = f" (Crazytel said: {body.message})" if body.message else ""
    kw = {"status": status, "request_id": request_id}
    if status in (401, 403):
        message = RejectedKey.default_message
        if body.message and not body.is_html:
            message = f"{message} (Crazytel said: {body.message})"
        return RejectedKey(message, **kw)
    if status == 429:
        retry_after = parse_retry_after(retry_after_header)
        return RateLimited(retry_after=retry_after, **kw)
    if status >= 500:
        page = " with an HTML error page" if body.is_html else ""
        return UpstreamError(f"Crazytel failed ({status}){page}{said}.", **kw)
    if body.is_html:
        return UpstreamError(f"Crazytel answered {status} with an HTML page{said}.", **kw)
    if status == 422:
        field_errors = body.field_errors or {}
        if not field_errors and body.message:
            named = [f for f in FIELD_NAMES if f in body.message] or [NON_FIELD]
            field_errors = {named[0]: [body.message]}
        return ValidationFailed(
            f"Crazytel refused the values sent: {body.message}"
            if body.message
            else ValidationFailed.default_message,
            field_errors=field_errors,
            **kw,
        )
    if status == 400:
        field_errors = {k: v for k, v in body.field_errors.items() if k != NON_FIELD}
        if not field_errors:
            message = body.message or NumberRejected.default_message
            for name in _number_fields_named(message) or [NON_FIELD]:
                field_errors[name] = [message]
        elif NON_FIELD in body.field_errors:
            field_errors[NON_FIELD] = body.field_errors[NON_FIELD]
        return NumberRejected(
            body.message or NumberRejected.default_message, field_errors=field_errors, **kw
        )
    if 300 <= status < 400:
        where = f" to {_shorten(location, 120)}" if location else ""
        return UpstreamError(
            f"Crazytel answered with a redirect ({status}){where}: check the tenant's base URL.",
            **kw,
        )
    if status == 404:
        return UpstreamError(
            f"Crazytel answered 404 Not Found{said}: check the tenant's base URL.", **kw
        )
    return UpstreamError(f"Crazytel answered an unexpected {status}{said}.", **kw)


def _unwrap_list(data: Any, depth: int = 0) -> list | None:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and depth < 2:
        for key in LIST_WRAPPER_KEYS:
            if key in data:
                found = _unwrap_list(data[key], depth + 1)
                if found is not None:
                    return found
    return None


def _parse_verified_numbers(data: Any, request_id: str, status: int) -> list[VerifiedNumber]:
    items = _unwrap_list(data)
    if items is None:
        raise UpstreamError(
            "Crazytel's list of verified numbers came in a shape the portal does not know "
            f"({_describe(data)}).",
            status=status,
            request_id=request_id,
        )
    numbers: list[VerifiedNumber] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        raw, label = item, ""
        if isinstance(item, dict):
            raw = next((item[k] for k in NUMBER_KEYS if item.get(k) not in (None, "")), None)
            label = next(
                (
                    " ".join(item[k].split())
                    for k in LABEL_KEYS
                    if isinstance(item.get(k), str) and item[k].strip()
                ),
                "",
            )
        number = normalise_number(raw)
        if number is None:
            raise UpstreamError(
                f"Crazytel's list of verified numbers holds an entry the portal cannot read "
                f"(item {index + 1}: {_describe(item)}).",
                status=status,
                request_id=request_id,
            )
        if number not in seen:
            seen.add(number)
            numbers.append(VerifiedNumber(number=number, label=label[:100]))
    return numbers


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        keys = ", ".join(sorted(str(k) for k in data)[:8])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(data, list):
        return f"a list of {len(data)}"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, (int, float, Decimal)):
        return "a number"
    if isinstance(data, str):
        return f"the text {_shorten(data, 40)!r}"
    return "nothing" if data is None else type(data).__name__


def _json_safe(value: Any) -> Any:
    """Decimals (from parse_float) back to JSON-native numbers for storage in a JSONField."""
    if isinstance(value, Decimal):
        if value.is_finite() and value.as_tuple().exponent >= 0:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _parse_created_trunk(
    data: Any, request_id: str, status: int, secrets: tuple[str, ...]
) -> CreatedTrunk:
    kept = _json_safe(strip_secrets(data, secrets))
    trunk = data
    if isinstance(data, dict) and "username" not in data:
        for key in OBJECT_WRAPPER_KEYS:
            if isinstance(data.get(key), dict):
                trunk = data[key]
                break
    if not isinstance(trunk, dict):
        raise UpstreamError(
            f"Crazytel answered the create with {_describe(data)} instead of a trunk object. "
            "The trunk may have been created: check the Crazytel account before trying again.",
            status=status,
            request_id=request_id,
        )
    username = trunk.get("username")
    if not isinstance(username, str) or not USERNAME_RE.match(username.strip()):
        shown = f" ({_shorten(str(username), 40)!r})" if username not in (None, "") else ""
        raise UpstreamError(
            f"Crazytel's answer to the create has no valid trunk username (CT + 6 digits){shown}. "
            "The trunk may have been created: check the Crazytel account before trying again.",
            status=status,
            request_id=request_id,
        )
    trunk_id = next((str(trunk[k]) for k in TRUNK_ID_KEYS if trunk.get(k) not in (None, "")), None)
    return CreatedTrunk(
        username=username.strip(),
        trunk_id=trunk_id,
        response=kept if isinstance(kept, dict) else {"response": kept},
    )


def _parse_balance(data: Any, request_id: str, status: int) -> Balance:
    obj = data
    if isinstance(data, dict) and "balance" not in data:
        obj = next((data[k] for k in OBJECT_WRAPPER_KEYS if isinstance(data.get(k), dict)), data)
    code = obj.get("account_code") if isinstance(obj, dict) else None
    raw = obj.get("balance") if isinstance(obj, dict) else None
    amount = None
    if not isinstance(raw, bool) and isinstance(raw, (int, Decimal, str)):
        try:
            amount = Decimal(str(raw).strip())
        except InvalidOperation:
            amount = None
    if amount is not None and not amount.is_finite():
        amount = None
    if amount is None or isinstance(code, bool) or not isinstance(code, (str, int)) or code == "":
        raise UpstreamError(
            f"Crazytel's balance answer lacks an account code or a balance ({_describe(data)}).",
            status=status,
            request_id=request_id,
        )
    return Balance(account_code=str(code), balance=amount)


# --- The factory ------------------------------------------------------------------------------


@sensitive_variables("api_key")
def crazytel_client_for(tenant, *, rate_limiter: RateLimiter | None = None) -> CrazytelClient:
    """The client for `tenant`'s Crazytel account: its base URL, its decrypted key, the settings'
    timeouts and the deployment-wide rate limiter for that key."""
    from trunks.credentials import api_key_decrypt

    if not tenant.api_key_ciphertext:
        raise RejectedKey("This tenant has no Crazytel API key yet. An admin must set one.")
    api_key = api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext)
    if rate_limiter is None:
        rate_limiter = _shared_rate_limiter(api_key)
    return CrazytelClient(
        base_url=tenant.effective_base_url,
        api_key=api_key,
        connect_timeout=settings.CRAZYTEL_CONNECT_TIMEOUT,
        read_timeout=settings.CRAZYTEL_TIMEOUT,
        rate_limiter=rate_limiter,
    )


@sensitive_variables("api_key")
def _shared_rate_limiter(api_key: str) -> RateLimiter:
    """The deployment-wide limiter for this key (trunks.ratelimit: Redis, else the database)."""
    from trunks.ratelimit import rate_limiter_for  # late: trunks.ratelimit imports this module

    return rate_limiter_for(api_key=api_key)
