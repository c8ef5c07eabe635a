"""Secrets canary: a trunk password submitted through every outcome never lands anywhere it could be
read later, and a tenant's API key is never stored in plaintext.

A canary password goes through the real form (view → service → client → Crazytel at the HTTP
edge) ending in success, a 422 that echoes it back, a 500 that echoes it back, and an exception
inside the service. Afterwards it is looked for in: a dump of every table (`dumpdata`, all apps),
every session (decoded), the cache (every key, locmem or Redis), everything logged at DEBUG through
the root logger (tracebacks included), every response's HTML (but the success page, which shows it
once), every error e-mail, and every task enqueued. The tenant's API key is looked for in the same
places.
"""

import html
import io
import json
import logging
import re
import sys

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.management import call_command
from django.core.signals import got_request_exception
from django.tasks import default_task_backend
from django.tasks.signals import task_enqueued
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from tests.trunk_fixtures import API_KEY_A, CANARY, TRUNKS_URL, VALID, created, token_from
from trunks.models import AuditKind, AuditRecord, AuditStatus

URL = "/trunks/new/"
# Where a secret must never be found (the API key is checked alongside the canary password).
SECRETS = {"password": CANARY, "api key": API_KEY_A}


class Everything(logging.Handler):
    """Every record any logger passes to the root, formatted with its traceback."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def root_log():
    handler = Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.fixture
def queued_tasks(settings):
    """Tasks go to the dummy backend (kept, not run), and every enqueue is seen whatever the backend."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    seen = []

    def record(sender, task_result, **kwargs):
        seen.append(task_result)

    task_enqueued.connect(record, weak=False)
    yield seen
    task_enqueued.disconnect(record)


@pytest.fixture
def error_reports():
    """The HTML error report (with every frame's local variables) of any request that failed: what
    an e-mail with include_html, or a DEBUG page, would show."""
    reports = []

    def record(sender, request, **kwargs):
        reports.append(ExceptionReporter(request, *sys.exc_info(), is_email=True))

    got_request_exception.connect(record, weak=False)
    yield reports
    got_request_exception.disconnect(record)


@pytest.fixture
def error_mail(settings):
    settings.ADMINS = ["ops@example.com"]
    mail.outbox = []
    return mail.outbox


def _database_dump() -> str:
    out = io.StringIO()
    call_command("dumpdata", format="json", stdout=out)
    return out.getvalue()


def _sessions() -> str:
    return json.dumps([s.get_decoded() for s in Session.objects.all()], default=str)


def _cache_contents() -> bytes:
    """Every key and value in the default cache, raw (values are pickles: text stays readable)."""
    backend = caches["default"]
    if isinstance(backend, LocMemCache):
        with backend._lock:
            return b"\n".join(
                k.encode() + b"=" + (v if isinstance(v, bytes) else repr(v).encode())
                for k, v in backend._cache.items()
            )
    client = backend._cache.get_client(None, write=False)  # django's RedisCache
    parts = []
    # Every key of this test run's worker (cache and rate limiter share the prefix: tests/isolation.py).
    for key in client.scan_iter(f"{backend.key_prefix}:*"):
        kind = client.type(key)
        parts.append(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            parts.extend(b"%s=%s" % item for item in client.hgetall(key).items())
        elif kind == b"list":
            parts.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            parts.extend(client.smembers(key))
        elif kind == b"zset":
            parts.extend(client.zrange(key, 0, -1))
    return b"\n".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)


def _mails(outbox) -> str:
    texts = []
    for message in outbox:
        texts += [message.subject, message.body]
        texts += [str(content) for content, _type in getattr(message, "alternatives", [])]
        texts += [str(attachment) for attachment in message.attachments]
    return "\n".join(texts)


def _tasks(seen) -> str:
    results = list(seen) + list(getattr(default_task_backend, "results", []))
    return "\n".join(repr((r.task.module_path, r.args, r.kwargs)) for r in results)


def _assert_nowhere(where: dict[str, str | bytes]) -> None:
    for what, secret in SECRETS.items():
        for place, text in where.items():
            needle = secret.encode() if isinstance(text, bytes) else secret
            assert needle not in text, f"the {what} was found in {place}"


SCENARIOS = {
    "success": dict(json=created("CT123456")),
    # FastAPI's 422 echoes the input, password included.
    "422-echo": dict(
        status=422,
        json={
            "detail": [
                {
                    "type": "value_error",
                    "loc": ["body", "password"],
                    "msg": f"Value error, Password {CANARY} must contain a symbol",
                    "input": CANARY,
                }
            ]
        },
    ),
    "500-echo": dict(status=500, json={"detail": f"Could not create trunk with {CANARY}"}),
    # A bug below the service: not an HTTP error the client knows, so the request ends in a 500.
    "exception": dict(body=RuntimeError("the HTTP adapter exploded")),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_canary_password_is_never_kept_anywhere(
    scenario, keyed_a, alice, crazytel, root_log, queued_tasks, error_mail, error_reports
):
    crazytel.post(TRUNKS_URL, **SCENARIOS[scenario])
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    pages: dict[str, str] = {}

    form = client.get(URL)
    pages["the form"] = form.content.decode()
    data = {**VALID, "submission_token": token_from(pages["the form"])}
    response = client.post(URL, data)
    result = html.unescape(response.content.decode())
    again = client.post(URL, data)  # the same form again: the first outcome, not a second call
    pages["the repeated submission"] = again.content.decode()
    htmx = client.post(URL, data, headers={"HX-Request": "true"})
    pages["the repeated htmx submission"] = htmx.content.decode()

    [call] = [c for c in crazytel.calls if c.request.method == "POST"]
    assert json.loads(call.request.body)["password"] == CANARY, "the canary reached Crazytel"
    record = AuditRecord.objects.get(kind=AuditKind.TRUNK_CREATE)
    pages["the attempt's page"] = client.get(
        reverse("trunks:attempt", args=[record.uuid])
    ).content.decode()

    if scenario == "success":
        assert response.status_code == 200
        assert record.status == AuditStatus.SUCCEEDED
        # Shown once, to the person who created the trunk, on the page that answers the POST.
        assert result.count(CANARY) == 1
        assert API_KEY_A not in result
    elif scenario == "exception":
        assert response.status_code == 500
        assert record.status == AuditStatus.UNKNOWN
        pages["the 500 page"] = result
        assert error_mail, "the error was mailed to the admins"
        assert len(error_reports) == 1
        pages["the error report with local variables"] = error_reports[0].get_traceback_html()
        assert any("RuntimeError" in line for line in root_log.lines)
    else:
        assert response.status_code == 200
        assert record.status == {"422-echo": "failed", "500-echo": "unknown"}[scenario]
        pages["the outcome page"] = result
        if scenario == "422-echo":
            assert "Password [redacted] must contain a symbol" in result

    _assert_nowhere(
        {
            "the database": _database_dump(),
            "a session": _sessions(),
            "the cache": _cache_contents(),
            "the logs": "\n".join(root_log.lines),
            "an error e-mail": _mails(error_mail),
            "a queued task": _tasks(queued_tasks),
            **{name: html.unescape(text) for name, text in pages.items()},
        }
    )
    assert root_log.lines, "logging was captured"


def test_the_stored_api_key_is_only_ciphertext(keyed_a):
    dump = _database_dump()
    assert API_KEY_A not in dump
    assert keyed_a.api_key_ciphertext in dump  # the dump is complete: the ciphertext is there
    assert re.search(r"gAAAAA[\w-]+", keyed_a.api_key_ciphertext), "a Fernet token"


def test_the_checks_see_the_canary_when_it_is_there(keyed_a, alice, root_log, error_mail):
    """The searches above find a secret where one is (so their passing means something)."""
    client = Client()
    client.force_login(alice)
    session = client.session
    session["oops"] = CANARY
    session.save()
    cache.set("oops", {"password": CANARY})
    logging.getLogger("trunks.test").debug("leaked %s", CANARY)
    mail.mail_admins("oops", f"body {CANARY}")
    assert CANARY in _sessions()
    assert CANARY.encode() in _cache_contents()
    assert any(CANARY in line for line in root_log.lines)
    assert CANARY in _mails(error_mail)
    cache.delete("oops")
