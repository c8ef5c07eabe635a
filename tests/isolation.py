"""What keeps parallel test workers (pytest-xdist) out of each other's way in one Redis.

Each worker gets its own key prefix, for Django's cache and for the rate limiter's keys, and clearing
the cache deletes only that worker's keys (Django's RedisCache.clear() is FLUSHDB: one worker would
wipe another's keys mid-test). pytest-django names test databases per worker (`test_<name>_gw0` on
PostgreSQL, `<file>_gw0` on SQLite); `live_server` binds a free port.

SQLite's test database is a file, not Django's default in-memory one: with an in-memory database the
live server hands every one of its threads the test's own connection, so a browser test's requests
(and the test polling the database beside them) share one connection and one transaction — a second
request's writes land inside the first one's transaction, locks guard nothing, and a read can fail
with "database table is locked". On a file each thread opens its own connection, as in production
(WAL, a busy timeout and BEGIN IMMEDIATE: portal/settings.py).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from portal.cache import RedisCache


def worker_id() -> str:
    """`gw0`, `gw1`… under pytest-xdist; `main` in a run without workers."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def worker_prefix() -> str:
    return f"portal-test-{worker_id()}"


class WorkerRedisCache(RedisCache):
    """The portal's Redis cache (portal/cache.py), whose clear() deletes only this worker's keys."""

    def clear(self):
        client = self._cache.get_client(None, write=True)
        # The cache's keys and the rate limiter's (rate_limiter_prefix_isolate) share the prefix.
        keys = list(client.scan_iter(match=f"{self.key_prefix}:*", count=1000))
        return bool(keys and client.delete(*keys))


def isolate_cache(caches_setting: dict) -> None:
    """Point the default cache at this worker's keys (in place, before any cache is opened)."""
    default = caches_setting["default"]
    default["KEY_PREFIX"] = worker_prefix()
    if default["BACKEND"] in (
        "django.core.cache.backends.redis.RedisCache",
        "portal.cache.RedisCache",
    ):
        default["BACKEND"] = "tests.isolation.WorkerRedisCache"


def rate_limiter_prefix_isolate() -> None:
    """The rate limiter names its Redis keys itself ("portal:crazytel-ratelimit:…"), and the tests'
    API keys are the same in every worker: give each worker its own names."""
    from trunks.crazytel.ratelimit import RedisBackend

    RedisBackend.__init__.__kwdefaults__["prefix"] = f"{worker_prefix()}:crazytel-ratelimit"


def sqlite_test_database_on_file(databases_setting: dict, config) -> str | None:
    """Name SQLite's test database as a file in memory-backed storage (/dev/shm when there is one),
    one per run: pytest-django adds the worker's suffix, and the file is deleted at the end. Returns
    the name (None when the database is not SQLite, or its test name is set already)."""
    default = databases_setting["default"]
    if default["ENGINE"] != "django.db.backends.sqlite3" or default.get("TEST", {}).get("NAME"):
        return None
    shm = Path("/dev/shm")
    folder = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    name = str(folder / f"test_portal-{_run_id(config)[:12]}.sqlite3")
    default.setdefault("TEST", {})["NAME"] = name
    return name


def _run_id(config) -> str:
    """One id for every process of a run (xdist hands its workers `testrunuid`), another for the
    next run. The controlling process chooses it (xdist's --testrunuid), so it knows the names its
    workers use: it deletes the run's migrated template at the end (tests/sqlite_template.py)."""
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        return worker["testrunuid"]
    if getattr(config.option, "testrunuid", None) is None:
        config.option.testrunuid = uuid.uuid4().hex
    return config.option.testrunuid
