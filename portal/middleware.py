"""Cross-cutting middleware: request ids, logs and metrics, session lifetime, htmx-aware login
redirects, the second factor, open invitations."""

import logging
import secrets
import threading
import time
from collections import OrderedDict
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect, resolve_url
from django.urls import Resolver404, resolve, reverse
from django.utils.functional import LazyObject, SimpleLazyObject, empty
from django_htmx.http import HttpResponseClientRedirect

from portal.clientip import client_ip_from
from portal.logs import request_id_bind, request_id_reset
from portal.metrics import http_request_observe
from trunks.accounts.second_factor import second_factor_enrolled, second_factor_needed

request_logger = logging.getLogger("portal.request")

SESSION_STARTED_KEY = "portal_session_started"
SESSION_REFRESHED_KEY = "portal_session_refreshed"


class SessionRefreshMiddleware:
    """The idle timeout without a session write on every request.

    SESSION_SAVE_EVERY_REQUEST would write the session row (and re-send the cookie) on each
    request; this saves a signed-in session only when its last save is SESSION_REFRESH_INTERVAL
    seconds old or more, which moves its expiry SESSION_COOKIE_AGE ahead. A session so ends between
    SESSION_COOKIE_AGE - SESSION_REFRESH_INTERVAL and SESSION_COOKIE_AGE after the last request.
    Sits just inside SessionMiddleware, which does the save.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or session.is_empty():
            return response
        now = int(time.time())
        if session.modified:
            # Saved anyway (a login, a message): note when.
            session[SESSION_REFRESHED_KEY] = now
            return response
        last = session.get(SESSION_REFRESHED_KEY)
        if last is None or now - int(last) >= settings.SESSION_REFRESH_INTERVAL:
            session[SESSION_REFRESHED_KEY] = now
        return response


class AbsoluteSessionTimeoutMiddleware:
    """End a logged-in session SESSION_ABSOLUTE_TIMEOUT seconds after login, however active."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(SESSION_STARTED_KEY)
            now = int(time.time())
            if started is None:
                request.session[SESSION_STARTED_KEY] = now
            elif now - int(started) > settings.SESSION_ABSOLUTE_TIMEOUT:
                logout(request)
        return self.get_response(request)


class HtmxLoginRedirectMiddleware:
    """An htmx request whose session ended is sent to the login page as a whole-page navigation.

    Without this, htmx would follow the 302 and swap the login form into a fragment of the page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # The status first: request.htmx reads the request's headers, which a page need not build.
        if response.status_code in (301, 302) and getattr(request, "htmx", False):
            login_url = resolve_url(settings.LOGIN_URL)
            location = response.get("Location", "")
            if location.startswith(login_url):
                # Come back to the page the person was on, not to the fragment's URL.
                current = request.htmx.current_url_abs_path or "/"
                return HttpResponseClientRedirect(f"{login_url}?{urlencode({'next': current})}")
        return response


class RequestIdMiddleware:
    """Give each request an id and log it when answered, with its metrics.

    The id is kept in the audit log (request.request_id), sent back as X-Request-ID, and bound to
    a context variable for code that never sees the request (portal.logs.current_request_id). The
    client's address as trusted proxies report it is request.client_ip (see portal.clientip).

    One log line per request on `portal.request`: method, route name, status, duration, user id,
    tenant (whatever a view put on `request.log_tenant`) and the request id; the same request is
    counted in portal.metrics. Outermost, so the time covers every other middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        # 32 random hex digits, as uuid4().hex gave, without building a UUID (a fifth of the cost).
        request.request_id = secrets.token_hex(16)
        request.client_ip = client_ip_from(request)
        token = request_id_bind(request.request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id
            request_observe(request, response, seconds=time.perf_counter() - started)
            return response
        finally:
            request_id_reset(token)


# Not worth an INFO line each: load balancers and Prometheus poll these.
QUIET_ROUTES = frozenset({"healthz", "metrics"})


def _route(request) -> str:
    """The URL pattern's name (`trunks:create`): a bounded set, unlike paths with ids in them.
    A request a middleware answered before its view was resolved (sent to log in, to set a
    password or a second factor) is named by the URL it asked for; `unmatched` is a URL the portal
    does not have."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or "unnamed"
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return "unmatched"
    return match.view_name or "unnamed"


def _user_id(request) -> int | None:
    """The signed-in user's id, if something in this request already looked the user up (no
    extra query just for the log line)."""
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    if user is None or not user.is_authenticated:
        return None
    return user.pk


def _tenant(request) -> str:
    tenant = getattr(request, "log_tenant", None)
    if tenant is None:
        return ""
    return str(getattr(tenant, "slug", tenant))


def request_observe(request, response, *, seconds: float) -> None:
    """Log and count one answered request."""
    route = _route(request)
    status = response.status_code
    http_request_observe(route=route, method=request.method, status=status, seconds=seconds)
    if status >= 500:
        level = logging.ERROR
    elif route in QUIET_ROUTES:
        level = logging.DEBUG
    else:
        level = logging.INFO
    if not request_logger.isEnabledFor(level):
        return  # the line's fields (and the user's id) are not worked out for nothing
    fields = {
        "method": request.method,
        "route": route,
        "path": request.path,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "user_id": _user_id(request),
        "tenant": _tenant(request),
        "client_ip": getattr(request, "client_ip", None),
    }
    request_logger.log(
        level,
        "%s %s %s %.0f ms",
        request.method,
        route,
        status,
        fields["duration_ms"],
        extra=fields,
    )


class SessionMemo:
    """A bounded, thread-safe note of session keys and when each was noted (monotonic clock),
    kept in this process: what a middleware may remember between requests without a round trip.
    The oldest notes go first once `max_entries` are kept."""

    def __init__(self, *, max_entries: int):
        self.max_entries = max_entries
        self._noted: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, key: str, *, max_age: float) -> bool:
        noted = self._noted.get(key)
        return noted is not None and time.monotonic() - noted < max_age

    def note(self, key: str) -> None:
        with self._lock:
            self._noted[key] = time.monotonic()
            self._noted.move_to_end(key)
            while len(self._noted) > self.max_entries:
                self._noted.popitem(last=False)


def lazy_unwrapped(value):
    """The object behind `value`'s lazy wrappers (nested ones too), worked out if not yet."""
    while isinstance(value, LazyObject):
        if value._wrapped is empty:
            value._setup()
        value = value._wrapped
    return value


class SecondFactorMiddleware:
    """A local (password) session that must show a second factor sees only the second-factor pages
    (and log-out) until it has: enrolment for superusers and tenant admins without one, the code
    for anyone with an authenticator. Sessions from the identity provider are never asked."""

    ALLOWED_URL_NAMES = ("two_factor_verify", "two_factor_setup", "two_factor_recovery", "logout")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None:
            # Looked at on every request here anyway: from now on request.user is the user itself,
            # not the two lazy wrappers (auth's, django-otp's) that every attribute read of it
            # went through twice, a raised AttributeError each (~100 reads a page: issue 17).
            user = request.user = lazy_unwrapped(user)
        if (
            user is not None
            and user.is_authenticated
            and not user.is_verified()
            # The note first: most requests stop there, without resolving the URL for _allowed.
            and not self._noted_not_needed(request)
            and not self._allowed(request)
            and not self._recently_not_needed(request)
        ):
            target = (
                "two_factor_verify" if second_factor_enrolled(user=user) else "two_factor_setup"
            )
            url = f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}"
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(url)

            return redirect(url)
        return self.get_response(request)

    # Sessions found not to need a second factor, with when that was found: per process, so a page
    # spends no cache round trip on it (it did on every request: issue 17's profile).
    _not_needed = SessionMemo(max_entries=10_000)

    @classmethod
    def _noted_not_needed(cls, request) -> bool:
        """Whether this process noted, in the last SESSION_REFRESH_INTERVAL seconds, that this
        session needs no second factor (a look-up, nothing else)."""
        key = request.session.session_key
        return bool(key) and cls._not_needed.fresh(key, max_age=settings.SESSION_REFRESH_INTERVAL)

    @classmethod
    def _recently_not_needed(cls, request) -> bool:
        """Whether a check in the last SESSION_REFRESH_INTERVAL seconds, in this process, found no
        second factor needed for this session: spares the device and role queries on every
        request, without writing the session (kept by session key; a new log-in has a new key).
        Enrolling or becoming an admin takes effect within that interval."""

        if cls._noted_not_needed(request):
            return True
        key = request.session.session_key
        if second_factor_needed(request=request):
            return False
        if key:
            cls._not_needed.note(key)
        return True

    def _allowed(self, request) -> bool:
        if request.path.startswith(
            settings.STATIC_URL
            if settings.STATIC_URL.startswith("/")
            else "/" + settings.STATIC_URL
        ):
            return True
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return True
        return match.url_name in self.ALLOWED_URL_NAMES


INVITATIONS_PROMPT_KEY = "portal_invitations_prompt"


class InvitationPromptMiddleware:
    """After a sign-in with open invitations (noted at login by portal.auth, when the session is
    written anyway), the first page shown is the invitations page (trunks.tenants.invitations):
    accept, decline, or decide later from /invitations/. No query or session write otherwise."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if (
            session is not None
            and request.method == "GET"
            # The note first: without one (nearly every request) the headers are not read.
            and session.get(INVITATIONS_PROMPT_KEY)
            and not getattr(request, "htmx", False)
            and request.user.is_authenticated
        ):
            del session[INVITATIONS_PROMPT_KEY]
            target = reverse("invitations:list")
            if request.path != target:
                return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


class PrivateCacheControlMiddleware:
    """`Cache-Control: private, no-store` on every response that does not set its own caching.

    Pages show tenant data (numbers, trunks, the audit log, members): no shared cache or browser
    history may keep them. A default here rather than per view, so a new page cannot forget it.
    Static files (served by WhiteNoise, outside this middleware) and views that choose their own
    Cache-Control (healthz's never_cache) keep theirs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "private, no-store"
        return response
