"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django's RedisCacheClient.get_client() builds a new `redis.Redis` for every cache operation, and
redis-py's constructor fills its table of ~170 response callbacks each time: in a create's profile
(tests.bench.profile --cpu) that was a tenth of the request's CPU, for six cache operations. A
client holds no connection of its own (it borrows one from the pool per command) and is
thread-safe, so one per pool serves every call.

`set_many` without a timeout (the audit cache's generation bumps, once per create) is one MSET,
atomic by itself, instead of Django's transaction pipeline (MULTI, MSET, EXEC): a third of the
commands and about half the client's CPU for the same keys and values.

`get_many_quick` is get_many for the keys every signed-in page reads (portal.redis_quick).
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

from portal.redis_quick import QuickMget


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._quick = QuickMget(lambda: self._get_connection_pool(False))

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            # A race here builds two equivalent clients; the last one stored is reused.
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def set_many(self, data, timeout):
        if timeout is not None:
            return super().set_many(data, timeout)
        client = self.get_client(None, write=True)
        client.mset({k: self._serializer.dumps(v) for k, v in data.items()})

    def get_many_quick(self, keys):
        """get_many on a connection of its own (portal.redis_quick): for the reads every page
        makes. Raises on any failure; the caller has its fallback."""
        values = self._quick.get_many([key.encode() for key in keys])
        return {
            k: self._serializer.loads(v) for k, v in zip(keys, values, strict=True) if v is not None
        }


class RedisCache(DjangoRedisCache):
    """Django's RedisCache (same options, same keys), reusing its redis-py clients."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    def get_many_quick(self, keys) -> dict:
        """get_many of keys the portal makes itself (no validation, which Django's does character
        by character), through ReusedClientRedisCacheClient.get_many_quick."""
        by_key = {self.make_key(key): key for key in keys}
        return {by_key[k]: v for k, v in self._cache.get_many_quick(list(by_key)).items()}


def cache_get_many(cache, keys) -> dict:
    """`cache.get_many(keys)`, the quick way when the cache is the portal's Redis cache."""
    quick = getattr(cache, "get_many_quick", None)
    return quick(keys) if quick is not None else cache.get_many(keys)
