"""The Crazytel client for a tenant: its base URL, its decrypted key, the settings' timeouts and the
deployment-wide rate limiter for that key, whose state lives in Redis or else in the database."""

import random
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connections, transaction
from django.db.models.expressions import RawSQL
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
from trunks.rows import row_insert

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
    """The limiter state in one RateLimitBucket row.

    A token is taken in one statement (_take_sql): an UPDATE that appends the grant only while the
    breaker and any block are over and fewer than `capacity` grants are inside the window, all
    decided on the row as the statement finds it and on the database's own clock, read once the
    statement holds the row (SQLite runs one writer at a time; on PostgreSQL a concurrent UPDATE
    waits for the row lock and then re-checks its conditions on the row as committed). Only a
    refusal reads the row again, to say why and for how long. A 429 and a failure (block, result)
    change the row under a row lock (SELECT … FOR UPDATE on PostgreSQL; on SQLite the settings'
    IMMEDIATE transactions take the write lock at BEGIN). Every time in the row is the database's
    clock, as every time in RedisBackend's is Redis's: web hosts whose clocks differ agree.
    """

    # A token is granted at `now`, but the request it pays for leaves only after the statement
    # commits. Hold each token this much longer than the window so commit latency cannot let a
    # burst through.
    GUARD = 0.25

    def __init__(self, using: str = "default"):
        self.using = using

    def _locked(self, key: str):
        """The key's row under a row lock, with the database's clock as `row.now`."""
        manager = RateLimitBucket.objects.using(self.using).annotate(
            now=RawSQL(_NOW[connections[self.using].vendor], [])  # noqa: S611 (a constant)
        )
        try:
            return manager.select_for_update().get(key=key)
        except RateLimitBucket.DoesNotExist:
            pass
        row_insert(RateLimitBucket(key=key), using=self.using, ignore_conflicts=True)
        return manager.select_for_update().get(key=key)

    def take(self, key: str, *, capacity: int, window: float) -> Decision:
        window += self.GUARD
        connection = connections[self.using]
        take_sql, state_sql = _take_sql(self.using)
        for _ in range(3):
            with connection.cursor() as cursor:
                cursor.execute(take_sql, [window, key, window, capacity])
                granted = cursor.fetchone()
                if granted is not None:
                    return Decision(True, failing=granted[0] > 0)
                cursor.execute(state_sql, [key])
                state = cursor.fetchone()
            if state is None:  # the key's first token: its row, then the take again
                row_insert(RateLimitBucket(key=key), using=self.using, ignore_conflicts=True)
                continue
            decision = _refusal(*state, connection=connection, capacity=capacity, window=window)
            if decision is not None:
                return decision
            # A token came back between the two statements: take it.
        return Decision(False, "window", 0.0)

    def block(self, key: str, *, seconds: float | None, base: float, cap: float) -> float:
        with transaction.atomic(using=self.using):
            row = self._locked(key)
            now = row.now
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
                row.breaker_until = row.now + cooloff
            row.save(update_fields=["failures", "breaker_until"])
            return opened

    def reset(self, key: str) -> None:
        RateLimitBucket.objects.using(self.using).filter(key=key).delete()


# The database's clock, in Unix seconds: SQLite's 'now' is one value for the whole statement, read
# once it holds the write lock (to the millisecond); PostgreSQL's clock_timestamp() is read where
# it is used, so after a concurrent UPDATE's wait for the row lock too.
_NOW = {
    "sqlite": "round((julianday('now') - 2440587.5) * 86400.0, 3)",
    "postgresql": "extract(epoch FROM clock_timestamp())::float8",
}
# The grants still inside the window (parameter: the window), and that list with `now` appended.
_LIVE = {
    "sqlite": "SELECT value FROM json_each({t}.{grants}) WHERE value > {now} - %s",
    "postgresql": (
        "SELECT g.v FROM jsonb_array_elements({t}.{grants}) AS g(v) WHERE (g.v)::float8 > {now} - %s"
    ),
}
_APPENDED = {
    "sqlite": "(SELECT json_group_array(value) FROM ({live} UNION ALL SELECT {now}))",
    "postgresql": (
        "(SELECT coalesce(jsonb_agg(live.v ORDER BY live.v), '[]'::jsonb) FROM ({live}) AS live)"
        " || to_jsonb({now})"
    ),
}


@cache
def _take_sql(alias: str) -> tuple[str, str]:
    """The take (parameters: window, key, window, capacity; returns the failures counted, or no
    row when refused) and the read of a refused take's state (parameter: key), for the database
    `alias`."""
    vendor = connections[alias].vendor
    if vendor not in _NOW:
        raise NotImplementedError(f"The database limiter has no statement for {vendor}.")
    qn = connections[alias].ops.quote_name
    opts = RateLimitBucket._meta
    column = {f.name: qn(f.column) for f in opts.concrete_fields}
    names = {"t": qn(opts.db_table), "grants": column["grants"], "now": _NOW[vendor]}
    live = _LIVE[vendor].format(**names)
    appended = _APPENDED[vendor].format(live=live, **names)
    now, table = names["now"], names["t"]
    # Names from the model, values as parameters.
    take = (
        f"UPDATE {table} SET {column['grants']} = {appended} "  # noqa: S608
        f"WHERE {column['key']} = %s AND {column['breaker_until']} <= {now} "
        f"AND {column['blocked_until']} <= {now} AND (SELECT count(*) FROM ({live}) AS live) < %s "
        f"RETURNING {column['failures']}"
    )
    state = (
        f"SELECT {column['breaker_until']}, {column['blocked_until']}, {column['grants']}, {now} "  # noqa: S608
        f"FROM {table} WHERE {column['key']} = %s"
    )
    return take, state


def _refusal(breaker_until, blocked_until, grants, now, *, connection, capacity, window):
    """Why a take was refused, from the row read after it: None when it would be granted now."""
    if breaker_until > now:
        return Decision(False, "breaker", breaker_until - now)
    if blocked_until > now:
        return Decision(False, "blocked", blocked_until - now)
    grants = RateLimitBucket._meta.get_field("grants").from_db_value(grants, None, connection)
    live = [g for g in grants if g > now - window]
    if len(live) < capacity:
        return None
    return Decision(False, "window", max(0.0, min(live) + window - now))
