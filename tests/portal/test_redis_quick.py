"""The quick MGET every signed-in page's session and user read goes through (portal/redis_quick.py,
RedisCache.get_many_quick): the same answers as Django's get_many, a reply read whole or the
connection closed."""

import pytest
from redis.exceptions import ResponseError

from portal.cache import cache_get_many
from portal.redis_quick import ReplyError, mget_packed, mget_reply_parsed


def test_it_packs_mget_as_redis_protocol():
    assert mget_packed([b"a", b"key:2"]) == b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$5\r\nkey:2\r\n"


def test_it_reads_values_and_both_protocols_nulls():
    reply = b"*3\r\n$3\r\nabc\r\n$-1\r\n_\r\n"
    assert mget_reply_parsed(reply, 3) == [b"abc", None, None]


def test_it_reads_values_holding_the_line_separator():
    assert mget_reply_parsed(b"*1\r\n$4\r\na\r\nb\r\n", 1) == [b"a\r\nb"]


def test_it_waits_for_the_rest_of_a_partial_reply():
    reply = b"*2\r\n$3\r\nabc\r\n$5\r\nhello\r\n"
    for cut in range(len(reply)):
        assert mget_reply_parsed(reply[:cut], 2) is None
    assert mget_reply_parsed(reply, 2) == [b"abc", b"hello"]


@pytest.mark.parametrize(
    "reply",
    [
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",  # more values than keys
        b"*1\r\n$1\r\na\r\n$1\r\nb\r\n",  # bytes after the reply
        b"*1\r\n$1\r\nab\r\n",  # a bulk string longer than it said
        b"*1\r\n:1\r\n",  # another type
        b"+OK\r\n",
    ],
)
def test_it_refuses_anything_but_one_whole_reply_of_the_expected_length(reply):
    with pytest.raises(ReplyError):
        mget_reply_parsed(reply, 1)


def test_it_raises_redis_errors():
    with pytest.raises(ResponseError):
        mget_reply_parsed(b"-NOAUTH Authentication required.\r\n", 1)


def test_quick_reads_answer_as_djangos_get_many(redis_cache):
    redis_cache.set("session", {"_auth_user_id": "7", "n": 1}, 30)
    redis_cache.set("generation", "g1", None)
    redis_cache.set("count", 5, 30)  # stored as an integer, not pickled
    redis_cache.set("big", "x" * 200_000, 30)  # a reply in many socket reads
    keys = ["session", "generation", "count", "big", "missing"]
    assert redis_cache.get_many_quick(keys) == redis_cache.get_many(keys)
    assert cache_get_many(redis_cache, keys) == redis_cache.get_many(keys)


def test_a_failed_read_closes_its_connection_and_the_next_read_opens_another(
    redis_cache,
    monkeypatch,
):
    redis_cache.set("a", 1, 30)
    assert redis_cache.get_many_quick(["a"]) == {"a": 1}
    quick = redis_cache._cache._quick
    (connection,) = quick._idle
    sock = connection._sock

    def unreadable(buffer, count):
        raise ReplyError("as if the reply were malformed")

    monkeypatch.setattr("portal.redis_quick.mget_reply_parsed", unreadable)
    with pytest.raises(ReplyError):
        redis_cache.get_many_quick(["a"])
    # Closed, not kept: what was left of its reply can never be read as another command's.
    assert quick._idle == [] and connection._sock is None and sock.fileno() == -1
    monkeypatch.undo()
    assert redis_cache.get_many_quick(["a"]) == {"a": 1}
    assert quick._idle[0] is not connection


def test_a_forked_process_opens_its_own_connections(redis_cache, monkeypatch):
    redis_cache.set("a", 1, 30)
    redis_cache.get_many_quick(["a"])
    quick = redis_cache._cache._quick
    (parents,) = quick._idle
    monkeypatch.setattr("portal.redis_quick.os.getpid", lambda: -1)
    assert redis_cache.get_many_quick(["a"]) == {"a": 1}
    assert quick._idle and quick._idle[0] is not parents


def test_cache_get_many_is_djangos_for_other_caches():
    from django.core.cache.backends.locmem import LocMemCache

    cache = LocMemCache("quick-test", {})
    cache.set("a", 1)
    assert cache_get_many(cache, ["a", "b"]) == {"a": 1}


def test_a_kept_connection_that_broke_meanwhile_is_asked_again_on_a_new_one(redis_cache):
    import socket

    redis_cache.set("a", 1, 30)
    redis_cache.get_many_quick(["a"])
    quick = redis_cache._cache._quick
    (kept,) = quick._idle
    kept._sock.shutdown(socket.SHUT_RDWR)  # as if the server had closed it while it was idle
    assert redis_cache.get_many_quick(["a"]) == {"a": 1}
    assert kept._sock is None and quick._idle[0] is not kept


def test_a_new_connection_that_fails_is_not_asked_again(redis_cache, monkeypatch):
    from portal.redis_quick import ConnectionClosed

    asked = []

    def closed(self, connection, keys):
        asked.append(connection)
        raise ConnectionClosed("closed")

    monkeypatch.setattr("portal.redis_quick.QuickMget._asked", closed)
    with pytest.raises(ConnectionClosed):
        redis_cache.get_many_quick(["a"])
    assert len(asked) == 1
