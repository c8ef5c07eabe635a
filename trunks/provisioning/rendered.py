"""The `#trunk-create` fragment rendered once per what it shows, each request's own values spliced in
(issue 17: the form under load, and a create's result).

- The unbound form (no result, no retry): the same markup for the same tenant, numbers and recent
  unknown outcomes; only the CSRF token and the one-time submission token differ per request.
- A create's result panel (a success, or an earlier submission still pending): the same markup for
  the same outcome, settings' labels and links present; the username, the password (shown once),
  the trunk id, the message, the settings' values and the links differ per request.

Either markup is rendered from its key alone (plain copies of the values the fragment shows, no
request, no context processors), so it cannot show anything the key does not hold. A value that
differs per request is rendered as a mark (a per-process random word, numbered) and replaced in
each request's copy, escaped as `{{ value }}` escapes it, in one pass (a value holding a mark's
text is not read again). An empty value stands for itself, in the key: the template may test it.
Not under DEBUG (templates may change while serving); dropped whenever a setting changes (tests).
"""

import html
import re
import secrets
from types import SimpleNamespace

from django.conf import settings
from django.core.signals import setting_changed
from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe

from portal.forms import RenderedOnce
from trunks.crazytel.parsing import VerifiedNumber

from .forms import TrunkCreateForm
from .numbers import VerifiedNumbers
from .passwords import password_rules_json

FRAGMENT = "trunks/trunk_form.html#trunk-create"
# Letters and digits: no escaping changes them, and no value or page text holds them by chance.
_MARK = f"mark{secrets.token_hex(16)}"
_MARKS = re.compile(_MARK + r"n(\d+)e")

FRAGMENTS = RenderedOnce()


def _forget(**kwargs) -> None:
    FRAGMENTS.clear()


setting_changed.connect(_forget, dispatch_uid="trunks.provisioning.rendered")


class _Spliced:
    """The values of one request, each replaced by a numbered mark in what the key holds."""

    def __init__(self):
        self.values: list = []

    def __call__(self, value):
        """The mark standing for `value` (an empty value stands for itself)."""
        if value in (None, ""):
            return value
        self.values.append(value)
        return f"{_MARK}n{len(self.values) - 1}e"

    def kept(self, key: tuple, render) -> SafeString:
        """The markup kept for `key` (made by `render` the first time), these values in it."""
        parts = FRAGMENTS.get(key, lambda: _split(render(key)))
        values = [_escaped(value) for value in self.values]
        spliced = list(parts)
        spliced[1::2] = [values[n] for n in parts[1::2]]
        return mark_safe("".join(spliced))  # noqa: S308 (the template's markup, values escaped)


def _split(markup: str) -> tuple:
    """The markup as it is kept: its text between the marks, and each mark's number between."""
    return tuple(int(part) if n % 2 else part for n, part in enumerate(_MARKS.split(markup)))


def _escaped(value) -> str:
    """`value` as `{{ value }}` writes it (django.utils.html.conditional_escape, without its cost
    for a plain string)."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _where() -> tuple:
    """What every rendering also depends on: the time zone, the language, the URLs' prefix."""
    return (
        FRAGMENT,
        timezone.get_current_timezone_name(),
        translation.get_language(),
        get_script_prefix(),
    )


def trunk_form_fragment(
    *, tenant, numbers: VerifiedNumbers, unknown_recent, csrf_token: str, next_token: str
) -> SafeString | None:
    """The unbound form's fragment for `tenant` with these tokens, or None under DEBUG."""
    if settings.DEBUG:
        return None
    spliced = _Spliced()
    key = (
        *_where(),
        "form",
        spliced(csrf_token),
        spliced(next_token),
        tenant.pk,
        tenant.name,
        tenant.slug,
        tenant.connection_ok,
        tenant.connection_checked_at,
        numbers.error,
        tuple((n.number, n.label) for n in numbers.numbers),
        numbers.fetched_at,
        tuple(
            (r.pk, r.caller_id_number, r.description, r.started_at, r.actor_username)
            for r in unknown_recent
        ),
    )
    return spliced.kept(key, _form_render)


def _form_render(key: tuple) -> str:
    """The form's fragment from `key`'s values only."""
    (csrf_token, next_token, pk, name, slug, connection_ok, checked_at) = key[5:12]
    (error, numbers, fetched_at, recent) = key[12:]
    tenant = SimpleNamespace(
        pk=pk, name=name, slug=slug, connection_ok=connection_ok, connection_checked_at=checked_at
    )
    verified = VerifiedNumbers(
        numbers=tuple(VerifiedNumber(number=n, label=label) for n, label in numbers),
        error=error,
        fetched_at=fetched_at,
    )
    unknown = [
        SimpleNamespace(
            pk=r_pk,
            caller_id_number=number,
            description=description,
            started_at=started_at,
            actor_username=actor,
        )
        for r_pk, number, description, started_at, actor in recent
    ]
    context = {
        "tenant": tenant,
        "tenants": [tenant],
        "numbers": verified,
        "form": TrunkCreateForm(numbers=verified),
        "unknown_recent": unknown,
        "unavailable": "",
        "result": None,
        "retry_of": None,
        "password_rules": password_rules_json(),
        "csrf_token": csrf_token,
        "next_token": next_token,
    }
    return get_template(FRAGMENT).render(context)


# What of a result the result panel shows (trunks.provisioning.services.TrunkCreateResult): as it
# is (it picks the panel's parts), or spliced in (it differs per request).
_RESULT_AS_IS = (
    "status",
    "succeeded",
    "pending",
    "unknown",
    "not_sent",
    "duplicate",
    "retry_after",
)
_RESULT_SPLICED = ("message", "username", "password", "trunk_id")


def trunk_result_fragment(
    *, result, settings_shown, sip: dict, audit_url: str, attempt_url: str
) -> SafeString | None:
    """The fragment showing `result` (no form: a success, or an earlier submission still pending)
    with `settings_shown` (label, text), `sip` (where to register) and the links, or None under
    DEBUG."""
    if settings.DEBUG:
        return None
    spliced = _Spliced()
    key = (
        *_where(),
        "result",
        tuple(getattr(result, name) for name in _RESULT_AS_IS),
        tuple(spliced(getattr(result, name)) for name in _RESULT_SPLICED),
        tuple((label, spliced(text)) for label, text in settings_shown),
        tuple(sip.items()),
        spliced(audit_url),
        spliced(attempt_url),
    )
    return spliced.kept(key, _result_render)


def _result_render(key: tuple) -> str:
    """The result's fragment from `key`'s values only."""
    as_is, spliced, settings_shown, sip, audit_url, attempt_url = key[5:]
    result = SimpleNamespace(
        **dict(zip(_RESULT_AS_IS, as_is, strict=True)),
        **dict(zip(_RESULT_SPLICED, spliced, strict=True)),
        settings=None,
    )
    context = {
        # The result's own tenant: the fragment names none (a placeholder that is there).
        "tenant": True,
        "unavailable": "",
        "form": None,
        "result": result,
        "settings_shown": list(settings_shown),
        "sip": dict(sip),
        "audit_url": audit_url,
        "attempt_url": attempt_url,
    }
    return get_template(FRAGMENT).render(context)
