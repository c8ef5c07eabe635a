"""The Crazytel client for a tenant: its base URL, its decrypted key, the settings' timeouts and the
deployment-wide rate limiter for that key, whose state lives in Redis or else in the database."""

import random
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from trunks.crazytel.client import CrazytelClient
from trunks.crazytel.errors import CrazytelError, RejectedKey
from trunks.crazytel.ratelimit import (
    BACKOFF_RESET_AFTER,
    Backend,
    Decision,
    RateLimiter,
    RedisBackend,
    backoff_delay,
)
from trunks.models import RateLimitBucket, Tenant

from .credentials import api_key_decrypt


class UpstreamNotAllowed(CrazytelError):
    """The tenant's base URL is not one the portal may send a key to (nothing was sent)."""

    category = "upstream_not_allowed"
    default_message = "The portal is not allowed to send this tenant's key to that address."


def _host_allowed(host: str, allowed: list[str]) -> bool:
    for entry in allowed:
        entry = entry.strip().lower().strip("[]")
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


def upstream_url_problem(url: str) -> str:
    """Why the portal must not send a tenant's key to `url` (a sentence), or "" when it may.

    https:// only (http:// too when CRAZYTEL_UPSTREAM_HTTP_ALLOWED, i.e. in development), to a host
    in CRAZYTEL_UPSTREAM_HOSTS, with no user name or password in the URL.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return "That is not a valid URL."
    schemes = {"https", "http"} if settings.CRAZYTEL_UPSTREAM_HTTP_ALLOWED else {"https"}
    if parts.scheme not in schemes:
        return "The Crazytel base URL must start with https://."
    if parts.username is not None or parts.password is not None:
        return "The Crazytel base URL may not hold a user name or password."
    if not host or not _host_allowed(host, settings.CRAZYTEL_UPSTREAM_HOSTS):
        allowed = ", ".join(settings.CRAZYTEL_UPSTREAM_HOSTS) or "none"
        return (
            f"The portal may send API keys only to these hosts: {allowed}. "
            "Ask the portal's operator to add one (CRAZYTEL_UPSTREAM_HOSTS)."
        )
    return ""


@sensitive_variables("api_key")
def crazytel_client_for(
    tenant: Tenant, *, rate_limiter: RateLimiter | None = None
) -> CrazytelClient:
    """The client for `tenant`'s Crazytel account: its base URL, its decrypted key, the settings'
    timeouts and the deployment-wide rate limiter for that key."""
    if not tenant.api_key_ciphertext:
        raise RejectedKey("This tenant has no Crazytel API key yet. An admin must set one.")
    api_key = api_key_decrypt(tenant_id=tenant.pk, ciphertext=tenant.api_key_ciphertext)
    return crazytel_client_with_key(tenant=tenant, api_key=api_key, rate_limiter=rate_limiter)


@sensitive_variables("api_key")
def crazytel_client_with_key(
    *, tenant: Tenant, api_key: str, rate_limiter: RateLimiter | None = None
) -> CrazytelClient:
    """The client for `tenant`'s Crazytel base URL with `api_key` (a stored key, or a new one being
    tried before it is saved). Refuses, before anything is sent, a base URL the settings do not
    allow (a URL saved before the allow-list, or the settings changed since)."""
    problem = upstream_url_problem(tenant.effective_base_url)
    if problem:
        raise UpstreamNotAllowed(problem)
    if rate_limiter is None:
        rate_limiter = rate_limiter_for(api_key, label=tenant.slug)
    return CrazytelClient(
        base_url=tenant.effective_base_url,
        api_key=api_key,
        connect_timeout=settings.CRAZYTEL_CONNECT_TIMEOUT,
        read_timeout=settings.CRAZYTEL_TIMEOUT,
        rate_limiter=rate_limiter,
    )


@sensitive_variables("api_key")
def rate_limiter_for(api_key: str, *, label: str = "") -> RateLimiter:
    """The limiter for `api_key` with the deployment's settings and shared backend; `label` (the
    tenant's slug) names its waits and refusals in the metrics."""
    return RateLimiter(api_key=api_key, backend=backend_default(), label=label)


def redis_client_from_cache(alias: str = "default"):
    """The redis-py client behind Django's cache `alias`, or None when that cache is not Redis."""
    cache = caches[alias]
    if isinstance(cache, RedisCache):
        return cache._cache.get_client(write=True)
    return None


def backend_default() -> Backend:
    """Redis when the cache is Redis (production), else the database. Never a per-process cache."""
    client = redis_client_from_cache()
    if client is not None:
        return RedisBackend(client)
    return DatabaseBackend()


class DatabaseBackend:
    """The limiter state in one RateLimitBucket row, read and written under a row lock.

    On PostgreSQL the row lock (SELECT … FOR UPDATE) serialises processes; on SQLite the settings'
    IMMEDIATE transactions take the write lock at BEGIN, which serialises them the same way.
    """

    # A token is granted at `now`, but the request it pays for leaves only after this transaction
    # commits and the lock passes on. Hold each token this much longer than the window so commit
    # latency (and small clock differences between web hosts) cannot let a burst through.
    GUARD = 0.25

    def __init__(self, using: str = "default"):
        self.using = using

    def _locked(self, key: str):
        manager = RateLimitBucket.objects.using(self.using)
        try:
            return manager.select_for_update().get(key=key)
        except RateLimitBucket.DoesNotExist:
            pass
        try:
            with transaction.atomic(using=self.using):
                manager.create(key=key)
        except IntegrityError:
            pass  # Another process created it first.
        return manager.select_for_update().get(key=key)

    def take(self, key: str, *, capacity: int, window: float) -> Decision:
        with transaction.atomic(using=self.using):
            row = self._locked(key)
            now = time.time()
            if row.breaker_until > now:
                return Decision(False, "breaker", row.breaker_until - now)
            if row.blocked_until > now:
                return Decision(False, "blocked", row.blocked_until - now)
            window += self.GUARD
            grants = [g for g in row.grants if g > now - window]
            if len(grants) < capacity:
                grants.append(now)
                row.grants = grants
                row.save(update_fields=["grants"])
                return Decision(True, failing=row.failures > 0)
            if grants != row.grants:
                row.grants = grants
                row.save(update_fields=["grants"])
            return Decision(False, "window", max(0.0, grants[0] + window - now))

    def block(self, key: str, *, seconds: float | None, base: float, cap: float) -> float:
        with transaction.atomic(using=self.using):
            row = self._locked(key)
            now = time.time()
            if seconds is None:
                level = row.backoff_level
                if now - max(row.blocked_until, row.last_429_at) > BACKOFF_RESET_AFTER:
                    level = 0
                seconds = backoff_delay(level, base=base, cap=cap, jitter=random.random())  # noqa: S311
                row.backoff_level = min(level + 1, 30)
            row.last_429_at = now
            row.blocked_until = max(row.blocked_until, now + seconds)
            row.save(update_fields=["backoff_level", "last_429_at", "blocked_until"])
            return row.blocked_until - now

    def result(self, key: str, *, server_error: bool, threshold: int, cooloff: float) -> bool:
        manager = RateLimitBucket.objects.using(self.using)
        if not server_error:
            # The common case is one UPDATE, and none at all when nothing was failing.
            manager.filter(key=key, failures__gt=0).update(failures=0)
            return False
        with transaction.atomic(using=self.using):
            row = self._locked(key)
            row.failures += 1
            opened = row.failures >= threshold
            if opened:
                row.breaker_until = time.time() + cooloff
            row.save(update_fields=["failures", "breaker_until"])
            return opened

    def reset(self, key: str) -> None:
        RateLimitBucket.objects.using(self.using).filter(key=key).delete()
