"""The bench's view of the portal: seed data, and the features it measures, found by their URLs.

Features are looked up (URL names, the sandbox's model, the generator command) rather than assumed,
so a feature that is not there yet makes its figure say "n/a (feature missing)" instead of crashing.
"""

import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from .harness import FeatureMissing

USERNAME_RE = re.compile(r"\bCT\d{6}\b")


def url_for(name: str, feature: str, **kwargs: Any) -> str:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        raise FeatureMissing(feature) from None


# --- Seed ----------------------------------------------------------------------------------------


def user_create(username: str, *, superuser: bool = False):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    user, _ = User.objects.get_or_create(
        username=username, defaults={"email": f"{username}@bench.invalid"}
    )
    user.set_unusable_password()
    user.is_superuser = user.is_staff = superuser
    user.save()
    return user


def sandbox_account_create(*, api_key: str, name: str):
    """A sandbox account answering to `api_key`, with its own verified numbers (issue 3's sandbox)."""
    try:
        from trunks.sandbox.services import sandbox_account_ensure
    except ImportError:
        raise FeatureMissing("sandbox") from None
    return sandbox_account_ensure(name=name, api_key=api_key)


def tenant_create(*, slug: str, name: str, base_url: str, api_key: str | None):
    from django.utils import timezone

    from trunks.models import Tenant
    from trunks.tenants.credentials import api_key_encrypt

    tenant, _ = Tenant.objects.update_or_create(
        slug=slug, defaults={"name": name, "base_url": base_url, "is_active": True}
    )
    if api_key:
        tenant.api_key_ciphertext = api_key_encrypt(tenant_id=tenant.id, plaintext=api_key)
        tenant.api_key_last4 = api_key[-4:]
        tenant.api_key_set_at = timezone.now()
        tenant.save()
    return tenant


def member_add(*, user, tenant, role: str) -> None:
    from trunks.models import Membership

    Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})


def logged_in_client(user, *, enforce_csrf: bool = True):
    from django.test import Client

    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def session_cookie_for(user) -> str:
    """A `Cookie:` header value for a real session of `user` (for wrk)."""
    from django.conf import settings

    client = logged_in_client(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@dataclass
class Lane:
    """One staff member in one tenant with their own sandbox key: creates do not share a budget."""

    user: Any
    tenant: Any
    api_key: str
    client: Any = None
    extra: dict = field(default_factory=dict)


def lane_create(*, index: int, prefix: str, sandbox_api_url: str | None) -> Lane:
    from trunks.models import Role

    api_key = f"bench-{prefix}-{index}-{secrets.token_hex(12)}"
    if sandbox_api_url is not None:
        sandbox_account_create(api_key=api_key, name=f"Bench {prefix} {index}")
    tenant = tenant_create(
        slug=f"bench-{prefix}-{index}",
        name=f"Bench {prefix} {index}",
        base_url=sandbox_api_url or "http://127.0.0.1:9/unreachable",
        api_key=api_key,
    )
    user = user_create(f"bench-{prefix}-{index}")
    member_add(user=user, tenant=tenant, role=Role.STAFF)
    return Lane(user=user, tenant=tenant, api_key=api_key, client=logged_in_client(user))


_TRANSACTION_CONTROL = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b", re.I
)


def statements_during(fn) -> list[tuple[str, float]]:
    """Every SQL statement `fn` runs, with the milliseconds it took to execute (timed here)."""
    import time

    from django.db import connection

    statements = []

    def timed(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((sql, 1000 * (time.perf_counter() - start)))

    with connection.execute_wrapper(timed):
        fn()
    return statements


def queries_count(statements) -> int:
    """Statements that are queries: transaction control (BEGIN, COMMIT, savepoints) not counted —
    SQLite shows its BEGIN IMMEDIATE where PostgreSQL's driver hides it, and neither is a query."""
    return sum(1 for sql, _ in statements if not _TRANSACTION_CONTROL.match(sql))


def queries_during(fn, *, with_time: bool = False):
    """The queries `fn` runs (queries_count); with `with_time`, also the milliseconds spent
    executing statements."""
    statements = statements_during(fn)
    if with_time:
        return queries_count(statements), sum(ms for _, ms in statements)
    return queries_count(statements)


# --- Reading the portal's pages ------------------------------------------------------------------


class _FormParser(HTMLParser):
    """Collects every form's fields as a browser would submit them untouched, and its options."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self.links: list[tuple[dict[str, str], str]] = []
        self._link: dict[str, str] | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = {"attrs": a, "fields": {}, "options": {}, "checkboxes": {}}
            self.forms.append(self._form)
        elif tag == "a" and "href" in a:
            self._link, self._link_text = a, []
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                self._form["checkboxes"][a["name"]] = a.get("value", "on")
                if "checked" in a:
                    self._form["fields"][a["name"]] = a.get("value", "on")
                return
            self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form["options"][self._select] = []
            self._form["fields"].setdefault(self._select, None)
        elif tag == "option" and self._select:
            value = a.get("value", "")
            self._form["options"][self._select].append(value)
            if "selected" in a or self._form["fields"][self._select] is None:
                self._form["fields"][self._select] = value
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form["fields"][self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "a" and self._link is not None:
            self.links.append((self._link, " ".join("".join(self._link_text).split())))
            self._link = None

    def handle_data(self, data):
        if self._textarea and self._form is not None:
            self._form["fields"][self._textarea] += data
        if self._link is not None:
            self._link_text.append(data)


def parse_page(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser


def trunk_form_fields(html: str) -> dict[str, Any]:
    """The trunk form on a page (the one with a caller ID field): its fields and select options."""
    for form in parse_page(html).forms:
        if "caller_id_number" in form["fields"]:
            return form
    raise FeatureMissing("trunk form fields")


def strong_password() -> str:
    return f"Bench{secrets.token_urlsafe(12)}9aZ"


def trunk_payload(form: dict[str, Any]) -> dict[str, Any]:
    """A valid create payload from what the form offers, typed as the API takes it."""
    callers = [v for v in form["options"].get("caller_id_number", []) if v]
    if not callers:
        raise RuntimeError("the trunk form offers no verified number (is the sandbox reachable?)")
    senders = [v for v in form["options"].get("sms_sender", []) if v.startswith("614")]
    payload = {
        "caller_id_number": callers[0],
        "password": strong_password(),
        "description": f"bench trunk {secrets.token_hex(3)}",
        "area_code": "02",
        "enabled": True,
        "hide_caller_id": False,
        "softphone_show_balance": True,
        "softphone_sync_sms": False,
    }
    if senders:
        payload["sms_sender"] = senders[0]
    return payload


def trunk_post_data(form: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """What a browser posts: the form's own fields (token, CSRF), with the payload filled in."""
    data = {k: v for k, v in form["fields"].items() if v is not None}
    for name, value in payload.items():
        if isinstance(value, bool):
            if value:
                data[name] = form["checkboxes"].get(name, "on")
            else:
                data.pop(name, None)
        else:
            data[name] = value
    for name in ("area_code",):
        options = form["options"].get(name)
        if options is not None and data.get(name) not in options:
            data[name] = ""
    return data
