"""Login and sessions: throttling by username and address, client IP, passwords, timeouts, re-auth."""

import time
from importlib import import_module

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from portal.clientip import client_ip_from
from portal.middleware import SESSION_REFRESHED_KEY, SESSION_STARTED_KEY, RequestIdMiddleware
from trunks.reauth import REAUTH_SESSION_KEY, reauth_is_fresh, reauth_redirect

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """These tests log in dozens of times; production's slow hash adds nothing to what they prove."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fail_login(client, username, times, **extra):
    response = None
    for _ in range(times):
        response = client.post(LOGIN, {"username": username, "password": "wrong-password"}, **extra)
    return response


# --- Throttling ---------------------------------------------------------------------------------


def test_repeated_failures_lock_the_username_from_that_address_with_a_clear_page(
    client, charlie, password, settings
):
    response = fail_login(client, "charlie", settings.AXES_FAILURE_LIMIT)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed log-ins for this username from your address" in html
    assert "15 minutes" in html
    assert 'name="username"' in html  # The login page, not a bare error text.
    assert 'value="charlie"' in html
    assert int(response["Retry-After"]) == 15 * 60
    # Even the right password is refused while locked.
    locked = client.post(LOGIN, {"username": "charlie", "password": password})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("url", [LOGIN, "/admin/login/"])
def test_a_username_longer_than_any_account_is_refused_with_a_message_and_not_recorded(
    client, db, url
):
    response = client.post(url, {"username": "u" * 300, "password": "whatever-it-is"})
    assert response.status_code == 200
    assert "Ensure this value has at most 150 characters" in response.content.decode()
    assert not AccessAttempt.objects.exists()


def test_below_the_limit_the_ordinary_error_shows(client, charlie, settings):
    response = fail_login(client, "charlie", settings.AXES_FAILURE_LIMIT - 1)
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_the_lock_is_for_username_and_address_together(client, charlie, alice, password, settings):
    fail_login(client, "charlie", settings.AXES_FAILURE_LIMIT)
    # Another user from the same address is not locked out…
    assert client.post(LOGIN, {"username": "alice", "password": password}).status_code == 302
    client.logout()
    # …nor is charlie from another address.
    response = client.post(
        LOGIN, {"username": "charlie", "password": password}, REMOTE_ADDR="198.51.100.7"
    )
    assert response.status_code == 302


def test_the_lockout_ends_after_the_cooloff(client, charlie, password, settings):
    fail_login(client, "charlie", settings.AXES_FAILURE_LIMIT)
    assert settings.AXES_COOLOFF_TIME.total_seconds() > 0  # finite
    # Move the failures back past the cool-off instead of waiting for it.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timezone.timedelta(seconds=1)
    )
    assert client.post(LOGIN, {"username": "charlie", "password": password}).status_code == 302


def test_a_forged_x_forwarded_for_does_not_escape_the_lock(client, charlie, settings):
    """With no trusted proxy, X-Forwarded-For is the attacker's own text: it must change nothing."""
    for n in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(
            LOGIN,
            {"username": "charlie", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_behind_a_trusted_proxy_the_lock_follows_the_forwarded_address(client, charlie, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    fail_login(
        client, "charlie", settings.AXES_FAILURE_LIMIT, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9"
    )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}
    # The same proxy, another client: not locked.
    response = client.post(
        LOGIN, {"username": "charlie", "password": "wrong"}, HTTP_X_FORWARDED_FOR="203.0.113.10"
    )
    assert response.status_code == 200


# --- The client's address -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "remote", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "", "192.0.2.1"),
        (0, "192.0.2.1", "203.0.113.5", "192.0.2.1"),  # no proxy: header ignored
        (1, "10.0.0.2", "203.0.113.5", "203.0.113.5"),
        (1, "10.0.0.2", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # the client's own entry ignored
        (2, "10.0.0.2", "6.6.6.6, 203.0.113.5, 10.0.0.3", "203.0.113.5"),
        (2, "10.0.0.2", "203.0.113.5", "10.0.0.2"),  # fewer hops than proxies: trust nothing
        (1, "10.0.0.2", "not-an-ip", "10.0.0.2"),
        (1, "10.0.0.2", "2001:db8::1", "2001:db8::1"),
        (0, "garbage", "", None),
    ],
)
def test_the_client_ip_comes_only_from_trusted_hops(settings, count, remote, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = count
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip_from(request) == expected


def test_every_request_carries_client_ip_for_the_audit_log(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    seen = {}

    def view(request):
        seen["ip"] = request.client_ip
        return HttpResponse()

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.4")
    RequestIdMiddleware(view)(request)
    assert seen["ip"] == "198.51.100.4"


# --- Passwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    ["short1!", "password1234", "123456789012345", "qwertyuiop123", "charlie-example"],
)
def test_weak_portal_passwords_are_refused(charlie, weak):
    with pytest.raises(ValidationError):
        validate_password(weak, user=charlie)


def test_a_long_uncommon_password_is_accepted(charlie):
    validate_password("violet-ferry-quartz-1987", user=charlie)


def test_the_validators_include_length_and_common_password_checks(settings):
    names = [v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert {"MinimumLengthValidator", "CommonPasswordValidator"} <= set(names)


# --- Session timeouts ---------------------------------------------------------------------------


def login(client, username, password):
    response = client.post(LOGIN, {"username": username, "password": password})
    assert response.status_code == 302
    return response


def test_login_records_when_the_session_started(client, charlie, password):
    before = int(time.time())
    login(client, "charlie", password)
    started = client.session[SESSION_STARTED_KEY]
    assert before <= started <= int(time.time())


def test_a_new_login_restarts_the_absolute_clock(client, charlie, password):
    login(client, "charlie", password)
    session = client.session
    session[SESSION_STARTED_KEY] = int(time.time()) - 3600
    session.save()
    login(client, "charlie", password)
    assert client.session[SESSION_STARTED_KEY] >= int(time.time()) - 5


def session_expiry_move(key: str, when) -> None:
    """As if time had passed: the stored session `key` ends at `when`. The row is the record; a
    cached_db store (sessions over Redis) also keeps a copy, dropped here as its own delete()
    drops it, so the next request reads the row."""
    Session.objects.filter(session_key=key).update(expire_date=when)
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    if hasattr(store, "cache_key_prefix"):
        caches[django_settings.SESSION_CACHE_ALIAS].delete(store.cache_key_prefix + key)


def test_sessions_are_cached_only_in_a_cache_every_process_shares():
    # A per-process cache (locmem) would go on serving a session another process ended.
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    cached = issubclass(store, cached_db.SessionStore)
    shared = isinstance(caches["default"], RedisCache)
    assert cached == shared


def test_an_idle_session_expires(client, charlie, password, settings):
    assert 0 < settings.SESSION_COOKIE_AGE <= 60 * 60
    assert 0 < settings.SESSION_REFRESH_INTERVAL <= 5 * 60
    login(client, "charlie", password)
    assert client.get("/").status_code == 200
    # As if the idle timeout had passed since the last request.
    session_expiry_move(client.session.session_key, timezone.now() - timezone.timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def _last_saved_ago(client, seconds):
    session = client.session
    session[SESSION_REFRESHED_KEY] = int(time.time()) - seconds
    session.save()
    session_expiry_move(session.session_key, timezone.now() + timezone.timedelta(seconds=60))
    return session.session_key


def test_activity_pushes_the_idle_expiry_forward(client, charlie, password, settings):
    # The session is saved again once its last save is SESSION_REFRESH_INTERVAL old.
    login(client, "charlie", password)
    key = _last_saved_ago(client, settings.SESSION_REFRESH_INTERVAL + 1)
    client.get("/")
    expiry = Session.objects.get(session_key=key).expire_date
    assert expiry > timezone.now() + timezone.timedelta(seconds=settings.SESSION_COOKIE_AGE - 5)


def test_requests_soon_after_a_save_do_not_write_the_session(client, charlie, password, settings):
    login(client, "charlie", password)
    key = _last_saved_ago(client, 5)
    response = client.get("/")
    assert response.status_code == 200
    expiry = Session.objects.get(session_key=key).expire_date
    # Not saved: the expiry set above (60 s ahead) stands, and no new cookie was sent.
    assert expiry < timezone.now() + timezone.timedelta(seconds=61)
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_an_active_session_lasts_past_the_idle_timeout(client, charlie, password, settings):
    # Requests spread over longer than the idle timeout keep the session alive.
    login(client, "charlie", password)
    for _ in range(3):
        key = _last_saved_ago(client, settings.SESSION_REFRESH_INTERVAL + 1)
        assert client.get("/").status_code == 200
        assert Session.objects.get(
            session_key=key
        ).expire_date > timezone.now() + timezone.timedelta(seconds=settings.SESSION_COOKIE_AGE - 5)


def test_an_active_session_still_ends_at_the_absolute_timeout(client, charlie, password, settings):
    login(client, "charlie", password)
    session = client.session
    session[SESSION_STARTED_KEY] = int(time.time()) - settings.SESSION_ABSOLUTE_TIMEOUT - 5
    session.save()
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert client.get("/").status_code == 302  # logged out, not just redirected once


def test_a_session_just_inside_the_absolute_timeout_continues(client, charlie, password, settings):
    login(client, "charlie", password)
    session = client.session
    session[SESSION_STARTED_KEY] = int(time.time()) - settings.SESSION_ABSOLUTE_TIMEOUT + 60
    session.save()
    assert client.get("/").status_code == 200


def test_an_expired_session_under_htmx_redirects_the_whole_page(
    client, charlie, password, settings
):
    login(client, "charlie", password)
    session = client.session
    session[SESSION_STARTED_KEY] = int(time.time()) - settings.SESSION_ABSOLUTE_TIMEOUT - 5
    session.save()
    response = client.get(
        "/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/audit/?page=2"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Faudit%2F%3Fpage%3D2"
    assert b"<form" not in response.content  # no login form to swap into a fragment


def test_an_anonymous_htmx_request_redirects_the_whole_page(client, db):
    response = client.get("/", headers={"HX-Request": "true"})
    assert response["HX-Redirect"].startswith("/accounts/login/?next=")


# --- Re-authentication --------------------------------------------------------------------------


def _sensitive(request):
    # As the key page (trunks.tenants.views.tenant_key) and the admin's key form guard themselves.
    if not reauth_is_fresh(request):
        return reauth_redirect(request)
    return HttpResponse("did the sensitive thing")


@pytest.fixture
def sensitive_url(settings):
    """A throwaway URLconf with one view that asks for the password again."""
    from django.urls import path

    import portal.urls

    module = type(portal)("reauth_test_urls")
    module.urlpatterns = [
        *portal.urls.urlpatterns,
        path("sensitive/", _sensitive, name="sensitive"),
    ]
    import sys

    sys.modules["reauth_test_urls"] = module
    settings.ROOT_URLCONF = "reauth_test_urls"
    yield "/sensitive/"
    del sys.modules["reauth_test_urls"]


def test_a_sensitive_view_asks_for_the_password_first(client, charlie, password, sensitive_url):
    login(client, "charlie", password)
    response = client.get(sensitive_url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('reauth')}?next=%2Fsensitive%2F"
    page = client.get(response["Location"])
    assert b"Confirm your password" in page.content
    assert page["Cache-Control"].startswith("max-age=0")


def test_the_right_password_lets_the_person_through_and_back(
    client, charlie, password, sensitive_url
):
    login(client, "charlie", password)
    response = client.post(reverse("reauth"), {"password": password, "next": sensitive_url})
    assert response.status_code == 302
    assert response["Location"] == sensitive_url
    assert client.get(sensitive_url).content == b"did the sensitive thing"


def test_a_wrong_password_is_refused_inline(client, charlie, password, sensitive_url):
    login(client, "charlie", password)
    response = client.post(reverse("reauth"), {"password": "nope", "next": sensitive_url})
    assert response.status_code == 200
    assert b"That is not your password." in response.content
    assert REAUTH_SESSION_KEY not in client.session
    assert client.get(sensitive_url).status_code == 302


def test_an_empty_password_is_refused_inline(client, charlie, password):
    login(client, "charlie", password)
    response = client.post(reverse("reauth"), {"password": ""})
    assert response.status_code == 200
    assert b"This field is required." in response.content


def test_the_confirmation_goes_stale(client, charlie, password, sensitive_url):
    login(client, "charlie", password)
    client.post(reverse("reauth"), {"password": password})
    session = client.session
    session[REAUTH_SESSION_KEY] = int(time.time()) - 301
    session.save()
    assert client.get(sensitive_url).status_code == 302


def test_reauth_never_redirects_off_site(client, charlie, password):
    login(client, "charlie", password)
    response = client.post(
        reverse("reauth"), {"password": password, "next": "https://evil.example/steal"}
    )
    assert response["Location"] == "/"


def test_an_htmx_request_to_a_sensitive_view_reauths_the_whole_page(
    client, charlie, password, sensitive_url
):
    login(client, "charlie", password)
    response = client.post(
        sensitive_url,
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/tenants/alpha/"},
    )
    assert response["HX-Redirect"] == f"{reverse('reauth')}?next=%2Ftenants%2Falpha%2F"


def test_reauth_failures_count_towards_the_login_lock(client, charlie, password, settings):
    login(client, "charlie", password)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(reverse("reauth"), {"password": "wrong"})
    assert response.status_code == 429
    # Locked: even the right password no longer confirms.
    client.post(reverse("reauth"), {"password": password})
    assert REAUTH_SESSION_KEY not in client.session


def test_reauth_is_fresh_ignores_garbage_in_the_session(rf):
    request = rf.get("/")
    request.session = {REAUTH_SESSION_KEY: "yesterday"}
    assert not reauth_is_fresh(request)
    request.session = {REAUTH_SESSION_KEY: time.time() + 3600}  # from the future
    assert not reauth_is_fresh(request)


def test_the_password_check_page_needs_a_login(client, db):
    response = client.get(reverse("reauth"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_a_logged_out_session_cookie_signs_nobody_in(client, charlie, password):
    # Also with sessions read from the cache (cached_db): logging out drops the cached copy.
    login(client, "charlie", password)
    assert client.get("/").status_code == 200
    ended = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    client.post(reverse("logout"))
    client.cookies[django_settings.SESSION_COOKIE_NAME] = ended
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
