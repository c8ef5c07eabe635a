"""The sandbox's API: Crazytel's four endpoints (create and change a trunk among them), its documented rules, and injectable faults.

Answers like FastAPI does (the real service runs on it): {"detail": "..."} for errors and
{"detail": [{"type", "loc", "msg", "input"}]} for validation.
"""

import contextlib
import errno
import json
import logging
import math
import socket
import time
import uuid
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from trunks.crazytel.contract import TRUNK_BOOL_DEFAULTS, number_is_mobile_sender

from .models import NumbersShape, SandboxAccount, SandboxTrunk
from .services import sandbox_fault_consume, sandbox_rate_limit_hit, sandbox_username_new

logger = logging.getLogger(__name__)

API_KEY_HEADER = "x-crazytel-api-key"
MAX_DESCRIPTION = 255
MAX_AREA_CODE = 10
# The trunk's boolean fields and what Crazytel assumes when one is left out (the contract's spec).
BOOL_DEFAULTS = TRUNK_BOOL_DEFAULTS
BOOL_FIELDS = tuple(BOOL_DEFAULTS)
STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Error communicating with the Crazytel API",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def detail(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"detail": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def validation_error(errors: list[dict]) -> JsonResponse:
    return JsonResponse({"detail": errors}, status=422)


def html_error_page(status: int) -> HttpResponse:
    title = f"{status} {STATUS_TEXT.get(status, 'Error')}"
    page = (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
        f"<body><center><h1>{title}</h1></center><hr><center>nginx</center></body></html>\n"
    )
    return HttpResponse(page, status=status, content_type="text/html; charset=utf-8")


def client_socket(environ) -> socket.socket | None:
    """The connection's socket, where the WSGI server lets us find it.

    gunicorn names it in the environ; wsgiref (runserver, live_server) only through the request
    body stream: LimitedStream -> the socket file's reader -> SocketIO -> socket.
    """
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        return sock
    stream = environ.get("wsgi.input")
    for _ in range(5):
        if stream is None:
            return None
        if isinstance(stream, socket.socket):
            return stream
        inner = getattr(stream, "_sock", None)
        if isinstance(inner, socket.socket):
            return inner
        nxt = getattr(stream, "raw", None)
        if nxt is None:
            nxt = getattr(getattr(stream, "_read", None), "__self__", None)
        stream = nxt
    return None


def _dropped(environ):
    # Runs while the WSGI server iterates the body, before any byte is written. The socket is
    # shut so no answer can follow; the error then tells wsgiref and gunicorn that the peer went
    # away, and they end the exchange quietly. The client sees a connection closed with no answer.
    sock = client_socket(environ)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    else:
        logger.warning("sandbox: cannot reach this server's socket; the client will time out")
    raise ConnectionResetError(errno.ECONNRESET, "Sandbox fault: connection dropped on purpose")
    yield b""  # pragma: no cover - makes this a generator


def dropped_connection(request) -> StreamingHttpResponse:
    return StreamingHttpResponse(_dropped(request.META), content_type="application/json")


def _fault_applies(account: SandboxAccount, kind: str) -> bool:
    """Whether this request gets the account's faults; `account` then holds their settings as
    they are now (read again with the countdown)."""
    if not account.has_faults:
        return False  # faults set while this request arrived apply from the next one
    return sandbox_fault_consume(account=account, kind=kind)


def _fault_response(request, account: SandboxAccount):
    """The answer a fault gives instead of the endpoint's, or None to go on."""
    if account.latency_ms:
        time.sleep(account.latency_ms / 1000)
    if account.drop_connection:
        return dropped_connection(request)
    headers = {"Retry-After": str(account.retry_after)} if account.retry_after is not None else {}
    if account.html_error:
        response = html_error_page(account.forced_status or 502)
    elif account.forced_status:
        status = account.forced_status
        response = detail(status, STATUS_TEXT.get(status, "Error"))
    elif account.malformed_json:
        response = HttpResponse(
            '{"detail": "ok", "username": "CT12', content_type="application/json"
        )
    else:
        return None
    for name, value in headers.items():
        response[name] = value
    return response


def sandbox_api(*, kind: str, methods: tuple[str, ...]):
    """Crazytel's front door: enabled check, key, rate limit and faults, then the endpoint."""

    def decorator(view):
        @csrf_exempt
        @login_not_required
        @wraps(view)
        def wrapped(request, **kwargs):
            if not settings.SANDBOX_ENABLED:
                raise Http404
            if request.method not in methods:
                return detail(405, "Method Not Allowed", Allow=", ".join(methods))
            try:
                # Read the whole body now, whatever the answer: a body left unread on a
                # kept-alive connection would be taken for the next request.
                request.body  # noqa: B018
            except RequestDataTooBig:
                return detail(413, "Request body too large")
            key = request.headers.get(API_KEY_HEADER, "").strip()
            if not key:
                return detail(401, "Not authenticated")
            account = SandboxAccount.objects.filter(api_key=key).first()
            if account is None:
                return detail(401, "Invalid API key")
            wait = sandbox_rate_limit_hit(account=account)
            if wait is not None:
                return detail(
                    429,
                    f"Rate limit exceeded: {account.rate_limit_per_minute} requests per minute",
                    Retry_After=str(max(1, math.ceil(wait))),
                )
            faulty = _fault_applies(account, kind)
            if faulty:
                response = _fault_response(request, account)
                if response is not None:
                    return response
            return view(request, account, faulty=faulty, **kwargs)

        return wrapped

    return decorator


@sandbox_api(kind="read", methods=("GET",))
def balance(request, account: SandboxAccount, *, faulty: bool):
    return JsonResponse({"account_code": account.account_code, "balance": float(account.balance)})


@sandbox_api(kind="read", methods=("GET",))
def verified_cli(request, account: SandboxAccount, *, faulty: bool):
    items = [i for i in account.verified_numbers if isinstance(i, dict) and "number" in i]
    if account.numbers_shape == NumbersShape.STRINGS:
        return JsonResponse([i["number"] for i in items], safe=False)
    if account.numbers_shape == NumbersShape.WRAPPED:
        results = [{"cli": i["number"], "description": i.get("label", "")} for i in items]
        return JsonResponse({"results": results, "count": len(results)})
    return JsonResponse(
        [{"number": i["number"], "label": i.get("label", "")} for i in items], safe=False
    )


def _password_errors(value) -> list[str]:
    rules = [
        (len(value) >= 8, "Password must be at least 8 characters long"),
        (any(c.isupper() for c in value), "Password must contain at least 1 uppercase letter"),
        (any(c.islower() for c in value), "Password must contain at least 1 lowercase letter"),
        (any(c.isdigit() for c in value), "Password must contain at least 1 number"),
    ]
    return [message for ok, message in rules if not ok]


def _validate(body, *, partial: bool = False) -> list[dict]:
    """Pydantic-like validation of the create body, or with `partial` of an update's body (every
    field optional), in FastAPI's 422 shape."""
    if not isinstance(body, dict):
        return [
            {
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": body,
            }
        ]
    errors = []

    def required_string(name):
        if name not in body:
            if partial:
                return None
            errors.append({"type": "missing", "loc": ["body", name], "msg": "Field required"})
            return None
        if not isinstance(body[name], str):
            errors.append(
                {
                    "type": "string_type",
                    "loc": ["body", name],
                    "msg": "Input should be a valid string",
                    "input": body[name],
                }
            )
            return None
        return body[name]

    password = required_string("password")
    if password is not None:
        for message in _password_errors(password):
            errors.append(
                {
                    "type": "value_error",
                    "loc": ["body", "password"],
                    "msg": f"Value error, {message}",
                    "input": password,
                    "ctx": {"error": message},
                }
            )
    required_string("caller_id_number")
    for name, limit in (
        ("sms_sender", 20),
        ("area_code", MAX_AREA_CODE),
        ("description", MAX_DESCRIPTION),
    ):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append(
                {
                    "type": "string_type",
                    "loc": ["body", name],
                    "msg": "Input should be a valid string",
                    "input": value,
                }
            )
        elif len(value) > limit:
            errors.append(
                {
                    "type": "string_too_long",
                    "loc": ["body", name],
                    "msg": f"String should have at most {limit} characters",
                    "input": value,
                    "ctx": {"max_length": limit},
                }
            )
    for name in BOOL_FIELDS:
        if name in body and not isinstance(body[name], bool):
            errors.append(
                {
                    "type": "bool_type",
                    "loc": ["body", name],
                    "msg": "Input should be a valid boolean",
                    "input": body[name],
                }
            )
    return errors


def _parse_body(request):
    """The JSON body, or the 422 FastAPI answers for one that is not JSON."""
    try:
        return json.loads(request.body or b"null"), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, validation_error(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", getattr(exc, "pos", 0)],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": getattr(exc, "msg", "Invalid JSON")},
                }
            ]
        )


def _numbers_refused(account: SandboxAccount, body: dict) -> JsonResponse | None:
    """The 400 for a caller ID or SMS sender that is not verified (or not a 614 mobile)."""
    verified = {_digits(n) for n in account.number_set()}
    if "caller_id_number" in body and _digits(body["caller_id_number"]) not in verified:
        return detail(
            400, f"Caller ID number {body['caller_id_number']} is not verified for this account"
        )
    sms_sender = _digits(body.get("sms_sender") or "")
    if sms_sender:
        if not number_is_mobile_sender(sms_sender):
            return detail(400, "SMS sender must start with 614")
        if sms_sender not in verified:
            return detail(400, f"SMS sender {body['sms_sender']} is not verified for this account")
    return None


def _sleep_past_timeout(account: SandboxAccount) -> None:
    """The answer comes after the caller has stopped waiting (the fault "then time out")."""
    sleep_ms = account.timeout_sleep_ms
    if sleep_ms is None:
        sleep_ms = int((settings.CRAZYTEL_TIMEOUT + 5) * 1000)
    time.sleep(sleep_ms / 1000)


def _digits(value: str) -> str:
    return "".join(c for c in value if c not in "+ -")


@sandbox_api(kind="create", methods=("POST",))
def sip_trunks(request, account: SandboxAccount, *, faulty: bool):
    body, refused = _parse_body(request)
    if refused is not None:
        return refused
    errors = _validate(body)
    if errors:
        return validation_error(errors)
    refused = _numbers_refused(account, body)
    if refused is not None:
        return refused

    if faulty and account.invalid_username:
        return JsonResponse({"id": str(uuid.uuid4()), "username": "TRUNK-42", "enabled": True})

    trunk = SandboxTrunk(
        account=account,
        caller_id_number=_digits(body["caller_id_number"]),
        sms_sender=_digits(body.get("sms_sender") or ""),
        area_code=body.get("area_code") or "",
        description=body.get("description") or "",
        **{name: body.get(name, BOOL_DEFAULTS[name]) for name in BOOL_FIELDS},
    )
    trunk.set_password(body["password"])
    for _ in range(5):
        trunk.username = sandbox_username_new()
        try:
            with transaction.atomic():
                trunk.save()
            break
        except IntegrityError:
            continue  # a concurrent create took the username first
    else:
        return detail(500, "Error communicating with the Crazytel API")

    if faulty and account.create_then_timeout:
        # The trunk exists; the answer comes after the caller has stopped waiting.
        _sleep_past_timeout(account)
    return JsonResponse(trunk.as_api())


# Changing a trunk is a write like creating one: the same fault scope ("create") applies to it.
@sandbox_api(kind="create", methods=("PATCH",))
def sip_trunk(request, account: SandboxAccount, *, faulty: bool, trunk_id: str):
    """PATCH /sip-trunks/{trunk_id}: only the fields sent change; `id` and `username` never do
    (FastAPI ignores fields it does not know). 404 for an id this account does not have."""
    try:
        trunk = SandboxTrunk.objects.get(account=account, id=uuid.UUID(trunk_id))
    except (ValueError, SandboxTrunk.DoesNotExist):
        return detail(404, "SIP trunk not found")
    body, refused = _parse_body(request)
    if refused is not None:
        return refused
    errors = _validate(body, partial=True)
    if errors:
        return validation_error(errors)
    refused = _numbers_refused(account, body)
    if refused is not None:
        return refused
    for name in ("caller_id_number", "sms_sender"):
        if name in body:
            setattr(trunk, name, _digits(body[name] or ""))
    for name in ("area_code", "description"):
        if name in body:
            setattr(trunk, name, body[name] or "")
    for name in BOOL_FIELDS:
        if name in body:
            setattr(trunk, name, body[name])
    if "password" in body:
        trunk.set_password(body["password"])
    trunk.save()
    if faulty and account.create_then_timeout:
        # The change is made; the answer comes after the caller has stopped waiting.
        _sleep_past_timeout(account)
    return JsonResponse(trunk.as_api())


@csrf_exempt
@login_not_required
def not_found(request):
    if not settings.SANDBOX_ENABLED:
        raise Http404
    return detail(404, "Not Found")
