"""One MGET against the shared Redis cache at the cost of its system calls: what every signed-in
page reads (its session, the user's generation and copy: portal.sessions, portal.user_cache).

redis-py runs each command through its retry wrapper, its observability hooks, the pool's check
that a borrowed connection has nothing left to read (a poll and two socket timeout changes) and a
general reply parser: ~150 µs of CPU for a three-key MGET in a loop, and Django's get_many adds key
validation, character by character, on top (~240 µs in all at load 6). Sending the packed command
on a connection of our own and reading its one reply costs ~20 µs (issue 17, the floor).

What stays redis-py's: opening the connection (address, TLS, AUTH, HELLO, SELECT: the cache's own
settings) and closing it. What is kept per cache client: idle connections, each used by one thread
at a time. A reply is read whole or the connection is closed: any error (a timeout, a short or
malformed reply, trailing bytes, Redis answering an error) closes it, so no later read can take
another command's reply. Callers fall back to the ordinary path on any exception.
"""

import os
import threading

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


class ReplyError(RedisConnectionError):
    """The reply was not one MGET reply of the expected length."""


class ConnectionClosed(RedisConnectionError):
    """The server closed the connection (or it broke) before the reply came."""


def mget_packed(keys: list[bytes]) -> bytes:
    """MGET of `keys` in Redis's protocol (RESP)."""
    parts = [b"*%d\r\n$4\r\nMGET\r\n" % (len(keys) + 1)]
    for key in keys:
        parts.append(b"$%d\r\n%s\r\n" % (len(key), key))
    return b"".join(parts)


def mget_reply_parsed(buffer: bytes, count: int) -> list[bytes | None] | None:
    """The values of one whole MGET reply of `count` values (RESP2 or RESP3; None for a missing
    key), or None while `buffer` holds only its beginning. Anything else raises ReplyError: an
    error reply, another type, another length, or bytes after the reply."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    if buffer[:1] == b"-":
        raise ResponseError(buffer[1:end].decode("utf-8", "replace"))
    if buffer[:1] != b"*" or buffer[1:end] != b"%d" % count:
        raise ReplyError("not an MGET reply of the expected length")
    position = end + 2
    values: list[bytes | None] = []
    for _ in range(count):
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        kind = buffer[position : position + 1]
        if kind == b"_" and end == position + 1:  # RESP3's null
            values.append(None)
            position = end + 2
            continue
        if kind != b"$":
            raise ReplyError("not a bulk string")
        length = int(buffer[position + 1 : end])
        if length < 0:  # RESP2's null bulk string
            values.append(None)
            position = end + 2
            continue
        start, stop = end + 2, end + 2 + length
        if len(buffer) < stop + 2:
            return None
        if buffer[stop : stop + 2] != b"\r\n":
            raise ReplyError("a bulk string of the wrong length")
        values.append(bytes(buffer[start:stop]))
        position = stop + 2
    if position != len(buffer):
        raise ReplyError("bytes after the reply")
    return values


class QuickMget:
    """MGET on connections of this client's own, opened by redis-py with the client's pool's
    settings. Idle connections are kept in a list (one thread uses a connection at a time); a new
    process (a forked worker) starts with none."""

    def __init__(self, connection_pool_for):
        # connection_pool_for() is the cache client's read pool; its settings open connections.
        self._connection_pool_for = connection_pool_for
        self._idle: list = []
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def _connection(self):
        """An idle connection (and True), or a new one (and False)."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # The parent's sockets are the parent's: dropped, never used or shut down here.
                    self._idle = []
                    self._pid = os.getpid()
        try:
            return self._idle.pop(), True
        except IndexError:
            pool = self._connection_pool_for()
            connection = pool.connection_class(**pool.connection_kwargs)
            connection.connect()
            return connection, False

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """Each key's raw value (None if missing), in order. A kept connection the server has
        closed meanwhile (its idle timeout, a restart) is tried once more on a new one: MGET
        changes nothing, so asking again is safe."""
        connection, kept = self._connection()
        try:
            return self._asked(connection, keys)
        except TimeoutError:
            raise  # a server that does not answer is not asked twice
        except (OSError, ConnectionClosed):
            if not kept:
                raise
        connection, _ = self._connection()
        return self._asked(connection, keys)

    def _asked(self, connection, keys: list[bytes]) -> list[bytes | None]:
        try:
            sock = connection._sock
            sock.sendall(mget_packed(keys))
            buffer = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionClosed("connection closed by the server")
                buffer += chunk
                values = mget_reply_parsed(buffer, len(keys))
                if values is not None:
                    break
        except BaseException:
            connection.disconnect()
            raise
        self._idle.append(connection)
        return values
