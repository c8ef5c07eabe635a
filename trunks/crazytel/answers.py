"""What an answer means when it is not the result asked for: an error body in any shape the
contract allows, a status, or a transport failure, each into the one typed error it stands for.

Pure reading, like parsing.py (no HTTP, no database): the client hands over the status, the text and
the headers it read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from .errors import (
    CrazytelError,
    NumberRejected,
    OutcomeUnknown,
    RateLimited,
    RejectedKey,
    Unreachable,
    UpstreamError,
    ValidationFailed,
)
from .parsing import (
    FIELD_NAMES,
    NON_FIELD,
    describe_html,
    json_loads_bounded,
    looks_like_html,
    normalise_number,
    parse_retry_after,
    shorten,
)


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
        data = json_loads_bounded(stripped)
    except ValueError:
        data = None
    else:
        _read_json_error(data, result)
        return result
    if looks_like_html(stripped, content_type.lower()):
        result.is_html = True
        result.message = describe_html(stripped)
        return result
    result.message = shorten(stripped)
    return result


def _read_json_error(data: Any, result: _ErrorBody, depth: int = 0) -> None:
    if depth > 3:
        return
    if isinstance(data, str):
        result.message = shorten(data, 500)
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
        result.message = shorten("; ".join(lines), 500)


def number_fields_named(message: str) -> list[str]:
    text = message.lower().replace("-", " ").replace("_", " ")
    found = []
    if "caller id" in text or "callerid" in text or "cli" in text.split() or "caller" in text:
        found.append("caller_id_number")
    if "sms" in text or "sender" in text:
        found.append("sms_sender")
    return found


def attribute_numbers(error: NumberRejected, body: dict) -> None:
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


def transport_error(exc: requests.RequestException, request_id: str) -> CrazytelError:
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


def parse_json_body(text: str, status: int, content_type: str, request_id: str) -> Any:
    try:
        return json_loads_bounded(text, parse_float=Decimal)
    except ValueError:
        pass
    if looks_like_html(text, content_type.lower()):
        page = describe_html(text)
        what = f"an HTML page ({page})" if page else "an HTML page"
    elif not text.strip():
        what = "an empty body"
    else:
        # Not JSON at all, or JSON too deep or too large to read safely (parsing.json_loads_bounded).
        raise UpstreamError(
            f"Crazytel answered {status} with a body the portal could not read as JSON.",
            status=status,
            request_id=request_id,
        )
    raise UpstreamError(
        f"Crazytel answered {status} with {what} instead of JSON.",
        status=status,
        request_id=request_id,
    )


def status_error(
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
            for name in number_fields_named(message) or [NON_FIELD]:
                field_errors[name] = [message]
        elif NON_FIELD in body.field_errors:
            field_errors[NON_FIELD] = body.field_errors[NON_FIELD]
        return NumberRejected(
            body.message or NumberRejected.default_message, field_errors=field_errors, **kw
        )
    if 300 <= status < 400:
        where = f" to {shorten(location, 120)}" if location else ""
        return UpstreamError(
            f"Crazytel answered with a redirect ({status}){where}: check the tenant's base URL.",
            **kw,
        )
    if status == 404:
        return UpstreamError(
            f"Crazytel answered 404 Not Found{said}: check the tenant's base URL.", **kw
        )
    return UpstreamError(f"Crazytel answered an unexpected {status}{said}.", **kw)
