"""Password spraying: limits on failed log-ins beside django-axes' username+address lock.

django-axes locks one username from one address after LOGIN_FAILURE_LIMIT failures. That never
slows one address trying a few passwords on many usernames, nor many addresses trying one username.
Two more counters, in the cache (shared by every worker when the cache is Redis), each over a fixed
window of LOGIN_COOLOFF_MINUTES that then lapses — a cool-off, never a permanent lock:

- per address, across usernames: LOGIN_ADDRESS_FAILURE_LIMIT (high, so an office behind one
  address is not stopped by a few colleagues' typos);
- per username, across addresses: LOGIN_USERNAME_FAILURE_LIMIT (higher than axes' own limit, so
  someone elsewhere cannot lock a colleague out with a handful of tries; an admin can unlock).

The backend refuses before the password is checked, and flags the request the way django-axes
does, so AxesMiddleware answers with portal.auth.lockout_response.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from portal.clientip import client_ip

KEY_PREFIX = "login-throttle"
ADDRESS = "address"
USERNAME = "username"


def _key(kind: str, value: str) -> str:
    # Hashed: a username or an address never appears in a cache key in clear.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{KEY_PREFIX}:{kind}:{digest}"


def _username(value) -> str:
    return value.strip().casefold() if isinstance(value, str) else ""


def _limits() -> dict[str, int]:
    return {
        ADDRESS: settings.LOGIN_ADDRESS_FAILURE_LIMIT,
        USERNAME: settings.LOGIN_USERNAME_FAILURE_LIMIT,
    }


def _counted(request, username) -> list[tuple[str, str]]:
    pairs = []
    address = client_ip(request) if request is not None else None
    if address:
        pairs.append((ADDRESS, address))
    name = _username(username)
    if name:
        pairs.append((USERNAME, name))
    return pairs


def login_throttled(request, username) -> str | None:
    """ADDRESS or USERNAME when that limit is reached (log-in refused until the window lapses)."""
    limits = _limits()
    for kind, value in _counted(request, username):
        if (cache.get(_key(kind, value)) or 0) >= limits[kind]:
            return kind
    return None


def login_throttled_kind_for_username(username: str) -> str | None:
    """USERNAME when the per-username limit holds `username` now."""
    count = cache.get(_key(USERNAME, _username(username))) or 0
    return USERNAME if count >= settings.LOGIN_USERNAME_FAILURE_LIMIT else None


def login_failure_record(request, username) -> None:
    window = settings.AXES_COOLOFF_TIME.total_seconds()
    for kind, value in _counted(request, username):
        key = _key(kind, value)
        # add() starts the window; incr() never moves its end, so the lock always lapses.
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # lapsed between the two calls
            cache.add(key, 1, timeout=window)


def login_throttle_reset(*, username: str) -> int:
    """Forget a username's failures (an admin's unlock). Returns 1 if there were any."""
    return int(bool(cache.delete(_key(USERNAME, _username(username)))))


@receiver(user_login_failed, dispatch_uid="portal.throttle.failure")
def _on_login_failed(sender, credentials, request=None, **kwargs):
    login_failure_record(request, (credentials or {}).get("username"))


class LoginThrottleBackend:
    """First in AUTHENTICATION_BACKENDS: refuses while either limit is reached."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        kind = login_throttled(request, username)
        if kind is None:
            return None  # let the next backend decide
        if request is not None:
            request.portal_login_throttle = kind
            # AxesMiddleware turns a flagged request into the lockout page (portal.auth).
            request.axes_locked_out = True
        # No get_user(): it never signs anyone in, so Django never picks it for a session.
        raise PermissionDenied("Too many failed log-ins.")
