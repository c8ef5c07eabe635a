"""The trunk form's fragment (`#trunk-create`, unbound, nothing to report) rendered once per what it
shows, with the request's own tokens spliced in (issue 17: the form under load).

A form view with no result, no retry and an unbound form shows the same markup for the same
tenant, numbers and recent unknown outcomes; only the CSRF token and the one-time submission token
differ from one request to the next. The markup is rendered from the key alone (plain copies of the
values the fragment shows, no request, no context processors), so it cannot show anything the key
does not hold: a change to the tenant, its numbers or its unknown outcomes is a new key, seen at
once. The tokens are rendered as per-process random marks and replaced in each request's copy.
Not under DEBUG (templates may change while serving); dropped whenever a setting changes (tests).
"""

import secrets
from types import SimpleNamespace

from django.conf import settings
from django.core.signals import setting_changed
from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from portal.forms import RenderedOnce
from trunks.crazytel.parsing import VerifiedNumber

from .forms import TrunkCreateForm
from .numbers import VerifiedNumbers
from .passwords import password_rules_json

FRAGMENT = "trunks/trunk_form.html#trunk-create"
# Letters and digits: no escaping changes them, and no token or page text holds them by chance.
_CSRF_MARK = f"csrfmark{secrets.token_hex(16)}"
_TOKEN_MARK = f"tokenmark{secrets.token_hex(16)}"

FRAGMENTS = RenderedOnce()


def _forget(**kwargs) -> None:
    FRAGMENTS.clear()


setting_changed.connect(_forget, dispatch_uid="trunks.provisioning.rendered")


def trunk_form_fragment(
    *, tenant, numbers: VerifiedNumbers, unknown_recent, csrf_token: str, next_token: str
) -> SafeString | None:
    """The unbound form's fragment for `tenant` with these tokens, or None under DEBUG."""
    if settings.DEBUG:
        return None
    key = (
        FRAGMENT,
        timezone.get_current_timezone_name(),
        translation.get_language(),
        get_script_prefix(),
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
    html = FRAGMENTS.get(key, lambda: _render(key))
    html = html.replace(_CSRF_MARK, escape(csrf_token)).replace(_TOKEN_MARK, escape(next_token))
    return mark_safe(html)  # noqa: S308 (the template engine's markup, the tokens escaped)


def _render(key: tuple) -> str:
    """The fragment from `key`'s values only."""
    (_, _, _, _, pk, name, slug, connection_ok, checked_at, error, numbers, fetched_at, recent) = (
        key
    )
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
        "csrf_token": _CSRF_MARK,
        "next_token": _TOKEN_MARK,
    }
    return get_template(FRAGMENT).render(context)
