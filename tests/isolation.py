"""What keeps parallel test workers (pytest-xdist) out of each other's way in one Redis.

Each worker gets its own key prefix, for Django's cache and for the rate limiter's keys, and clearing
the cache deletes only that worker's keys (Django's RedisCache.clear() is FLUSHDB: one worker would
wipe another's keys mid-test). SQLite needs nothing (an in-memory database per process); pytest-django
names PostgreSQL test databases per worker (`test_<name>_gw0`); `live_server` binds a free port.
"""

from __future__ import annotations

import os

from django.core.cache.backends.redis import RedisCache


def worker_id() -> str:
    """`gw0`, `gw1`… under pytest-xdist; `main` in a run without workers."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def worker_prefix() -> str:
    return f"portal-test-{worker_id()}"


class WorkerRedisCache(RedisCache):
    """Django's Redis cache, whose clear() deletes only this worker's keys."""

    def clear(self):
        client = self._cache.get_client(None, write=True)
        # The cache's keys and the rate limiter's (rate_limiter_prefix_isolate) share the prefix.
        keys = list(client.scan_iter(match=f"{self.key_prefix}:*", count=1000))
        return bool(keys and client.delete(*keys))


def isolate_cache(caches_setting: dict) -> None:
    """Point the default cache at this worker's keys (in place, before any cache is opened)."""
    default = caches_setting["default"]
    default["KEY_PREFIX"] = worker_prefix()
    if default["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        default["BACKEND"] = "tests.isolation.WorkerRedisCache"


def rate_limiter_prefix_isolate() -> None:
    """The rate limiter names its Redis keys itself ("portal:crazytel-ratelimit:…"), and the tests'
    API keys are the same in every worker: give each worker its own names."""
    from trunks.crazytel.ratelimit import RedisBackend

    RedisBackend.__init__.__kwdefaults__["prefix"] = f"{worker_prefix()}:crazytel-ratelimit"
