"""A process that hammers one rate limiter (tests/test_ratelimit.py starts several).

Started through multiprocessing's "forkserver": each worker is forked from a clean, single-threaded
server process that imported this module (and so set Django up) once; it shares nothing with the
test process but the database or Redis it is pointed at.
"""

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()  # Once in the fork server; a no-op in the test process, which is set up already.

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402

from trunks.crazytel.ratelimit import RateLimiter, RedisBackend  # noqa: E402
from trunks.tenants.upstream import DatabaseBackend  # noqa: E402


def hammer(kind, api_key, *, db_name, redis_url, budget, window, run_for, start, results):
    # The test database (test_<name>), not the one the settings name.
    settings.DATABASES["default"]["NAME"] = db_name
    if kind == "redis":
        backend = RedisBackend(redis.Redis.from_url(redis_url))
    else:
        backend = DatabaseBackend()
    limiter = RateLimiter(
        api_key=api_key, backend=backend, per_window=budget, window=window, max_wait=0.5, guard=0
    )
    from trunks.crazytel.errors import RateLimited as error

    start.wait(timeout=120)  # Every process ready: all start hammering together.
    stop_at = time.time() + run_for
    granted = []
    refused = 0
    while time.time() < stop_at:
        try:
            limiter.acquire()
        except error:
            refused += 1
            continue
        granted.append(time.time())
    connections.close_all()
    results.put((granted, refused))
