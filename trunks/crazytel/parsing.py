"""Reading Crazytel's answers: any shape the contract allows, into the portal's plain results.

Also the one secret scrubber (`strip_secrets`, `redact`), the one number normaliser and the one
Retry-After parser: everything that reads upstream text lives here, with no HTTP and no database.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any

from .contract import TRUNK_FIELD_NAMES, TRUNK_FIELDS, USERNAME_RE
from .errors import UpstreamError

NON_FIELD = "__all__"
# How much of an unexpected body a message may quote.
SNIPPET_CHARS = 200
RETRY_AFTER_MAX = 3600.0
# No Crazytel answer nests deeper than a few levels; a hostile one may nest 200 000 deep, which
# makes json raise RecursionError (and every recursive walk after it). Bounded before parsing.
MAX_JSON_DEPTH = 32
# The client caps what it reads at this too; a parse of anything longer is refused.
MAX_JSON_CHARS = 1024 * 1024
# A string token always matches (its closing quote optional), so the scan stays linear on hostile
# text such as an unterminated string full of escaped quotes.
_JSON_TOKEN_RE = re.compile(r'"(?:[^"\\]+|\\.)*"?|[\[\]{}]')

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
# Fields whose name appears in an upstream message, in the order they are looked for (the
# contract's 422 is about the password).
FIELD_NAMES = ("password", *(name for name in TRUNK_FIELD_NAMES if name != "password"))
_SECRET_KEY_PARTS = ("password", "passwd", "passphrase", "secret", "token", "api_key", "apikey")
_SECRET_KEY_EXACT = {"pass", "pwd", "key", "auth", "authorization", "credential", "credentials"}


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
class UpdatedTrunk:
    """What Crazytel said after an update: the trunk's documented settings it returned (numbers
    normalised, never a password), or None when it answered an empty 200/204 ("the sent values
    applied")."""

    settings: dict | None = None
    response: dict | None = None


@dataclass(frozen=True)
class Balance:
    account_code: str
    balance: Decimal


def is_secret_key(key: Any) -> bool:
    """A response key whose value may be a credential (stripped before anything is kept).

    Remembered per key: an answer names the same few keys every time (a long one, which a hostile
    upstream could send to fill the memory, is not remembered)."""
    if not isinstance(key, str):
        return False
    return _secret_name_remembered(key) if len(key) <= 64 else _secret_name(key)


def _secret_name(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return (
        k in _SECRET_KEY_EXACT
        or any(part in k for part in _SECRET_KEY_PARTS)
        or k.endswith(("_pass", "_pwd", "_key"))
    )


_secret_name_remembered = functools.lru_cache(maxsize=1024)(_secret_name)


def strip_secrets(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """`value` without password-like keys (recursively) and with known secrets blanked out: a
    value that is a secret goes with its key, one that holds a secret has it redacted."""
    exact = frozenset(secret for secret in secrets if secret)
    return _stripped(value, exact, tuple(secret for secret in exact if len(secret) >= 4))


def _stripped(value: Any, exact: frozenset[str], partial: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in partial:  # redact(), inline: every string of an answer passes here
            if secret in value:
                value = value.replace(secret, "[redacted]")
        return value
    if isinstance(value, dict):
        return {
            k: _stripped(v, exact, partial)
            for k, v in value.items()
            if not is_secret_key(k) and not (isinstance(v, str) and v in exact)
        }
    if isinstance(value, list):
        return [_stripped(v, exact, partial) for v in value]
    return redact(value, partial)


def redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` (text, or dicts and lists of it) with every known secret replaced by [redacted].

    The one secret scrubber: upstream bodies, error messages and field errors all pass here."""
    if isinstance(value, str):
        for secret in secrets:
            if secret and len(secret) >= 4 and secret in value:
                value = value.replace(secret, "[redacted]")
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value


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


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date, at most an hour.

    None when absent or garbage; a negative delay or a date in the past means "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 64 or not text.isascii():
        return None
    number = text[1:] if text.startswith("-") else text
    if number.replace(".", "", 1).isdigit():
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
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


def describe_html(text: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception:
        return ""
    summary = " ".join(parser.title.split()) or " ".join(" ".join(parser.text).split())
    return shorten(summary)


def shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def looks_like_html(text: str, content_type: str) -> bool:
    head = text.lstrip()[:100].lower()
    return "html" in content_type or head.startswith(("<!doctype", "<html", "<head", "<body"))


class JSONRefused(ValueError):
    """A body too deep or too large to be parsed; a ValueError like any other bad JSON."""


def json_loads_bounded(text: str, **kwargs) -> Any:
    """json.loads for upstream text, refusing bodies nested deeper than MAX_JSON_DEPTH or longer than
    MAX_JSON_CHARS. Any failure is a ValueError (the caller's "not JSON" path)."""
    if len(text) > MAX_JSON_CHARS:
        raise JSONRefused(f"longer than {MAX_JSON_CHARS} characters")
    depth = 0
    # Fewer opening brackets than the limit in the whole text cannot nest deeper (most answers).
    # Else strings are skipped whole, so brackets inside them do not count; stops at the first excess.
    brackets = text.count("[") + text.count("{")
    for match in _JSON_TOKEN_RE.finditer(text) if brackets > MAX_JSON_DEPTH else ():
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise JSONRefused(f"nested deeper than {MAX_JSON_DEPTH} levels")
        elif token in "]}":
            depth -= 1
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # belt and braces: never a crash, whatever the scan missed
        raise JSONRefused("nested too deeply") from None


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


def parse_verified_numbers(data: Any, request_id: str, status: int) -> list[VerifiedNumber]:
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
        return f"the text {shorten(data, 40)!r}"
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


def parse_created_trunk(
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
        shown = f" ({shorten(str(username), 40)!r})" if username not in (None, "") else ""
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


def parse_balance(data: Any, request_id: str, status: int) -> Balance:
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


def parse_updated_trunk(
    data: Any, request_id: str, status: int, secrets: tuple[str, ...]
) -> UpdatedTrunk:
    """The answer to PATCH /sip-trunks/{id}: the updated trunk object (any documented field it
    holds, with its type checked), a wrapper around one, or nothing at all (empty 200 or 204)."""
    if data is None:
        return UpdatedTrunk()
    kept = _json_safe(strip_secrets(data, secrets))
    trunk = data
    if isinstance(data, dict) and not set(data) & set(TRUNK_FIELD_NAMES):
        for key in OBJECT_WRAPPER_KEYS:
            if isinstance(data.get(key), dict):
                trunk = data[key]
                break
    if not isinstance(trunk, dict):
        raise UpstreamError(
            f"Crazytel answered the change with {_describe(data)} instead of a trunk object: "
            "the change may or may not have been applied.",
            status=status,
            request_id=request_id,
        )
    settings: dict[str, Any] = {}
    for spec in TRUNK_FIELDS:
        if spec.secret or spec.name not in trunk:
            continue
        value = trunk[spec.name]
        if spec.type is bool:
            if isinstance(value, bool):
                settings[spec.name] = value
        elif value is None:
            settings[spec.name] = ""
        elif isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value).strip()
            settings[spec.name] = (normalise_number(text) or text) if spec.number else text
    return UpdatedTrunk(
        settings=settings or None, response=kept if isinstance(kept, dict) else {"response": kept}
    )
