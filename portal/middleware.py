"""Cross-cutting middleware: session lifetime and htmx-aware login redirects."""

import time
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

from portal.clientip import client_ip_from

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
        if getattr(request, "htmx", False) and response.status_code in (301, 302):
            login_url = resolve_url(settings.LOGIN_URL)
            location = response.get("Location", "")
            if location.startswith(login_url):
                # Come back to the page the person was on, not to the fragment's URL.
                current = request.htmx.current_url_abs_path or "/"
                return HttpResponseClientRedirect(f"{login_url}?{urlencode({'next': current})}")
        return response


class RequestIdMiddleware:
    """Give each request an id (kept in the audit log and sent back as X-Request-ID), and the
    client's address as trusted proxies report it (request.client_ip; see portal.clientip)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = uuid.uuid4().hex
        request.client_ip = client_ip_from(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


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
