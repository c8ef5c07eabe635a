"""Fixtures of the portal's own tests."""

import os
import uuid

import pytest
import redis

from portal.cache import RedisCache
from tests.isolation import worker_prefix

REDIS_URL = os.environ.get("RATELIMIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/8")


@pytest.fixture
def redis_cache():
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {REDIS_URL}")
    prefix = f"{worker_prefix()}:cache-{uuid.uuid4().hex[:8]}"
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": prefix})
    yield cache
    for connection in cache._cache._quick._idle:
        connection.disconnect()
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
