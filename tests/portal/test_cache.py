"""The portal's Redis cache backend (portal/cache.py): Django's, reusing its redis-py clients."""


def test_every_cache_call_uses_the_same_redis_client(redis_cache):
    first = redis_cache._cache.get_client(write=True)
    assert redis_cache._cache.get_client(write=False) is first
    redis_cache.set("a", {"n": 1}, 30)
    redis_cache.set_many({"b": 2, "c": [3]}, 30)
    assert redis_cache.get("a") == {"n": 1}
    assert redis_cache.get_many(["b", "c", "missing"]) == {"b": 2, "c": [3]}
    assert redis_cache.add("a", "other", 30) is False
    assert redis_cache.incr("b") == 3
    redis_cache.delete("c")
    assert redis_cache.get("c") is None
    assert redis_cache._cache.get_client(write=True) is first


def test_set_many_without_a_timeout_stores_every_key_for_good_in_one_command(redis_cache):
    client = redis_cache._cache.get_client(write=True)
    redis_cache.set("a", "old", 30)
    sent = []
    execute = client.execute_command

    def counted(*args, **kwargs):
        sent.append(args[0])
        return execute(*args, **kwargs)

    client.execute_command = counted
    try:
        redis_cache.set_many({"a": "new", "b": (1, "x")}, None)
    finally:
        del client.execute_command
    assert sent == ["MSET"]
    assert redis_cache.get_many(["a", "b"]) == {"a": "new", "b": (1, "x")}
    # As Django's set_many: a key's earlier expiry is gone (-1: no expiry).
    assert client.ttl(redis_cache.make_and_validate_key("a")) == -1
    assert client.ttl(redis_cache.make_and_validate_key("b")) == -1
