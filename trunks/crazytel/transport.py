"""How the client reaches Crazytel: one pooled HTTP session per process, and the call's deadline on
the wall clock for the status line and headers (trunks.crazytel.client reads the body within the same
deadline). No credentials live here."""

from __future__ import annotations

import contextlib
import contextvars
import http.cookiejar
import socket
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_session_lock = threading.Lock()
_shared_session: requests.Session | None = None


class Deadline:
    """A call's deadline on the wall clock (time.monotonic), and whether it cut the connection."""

    def __init__(self, at: float):
        self.at = at
        self.cut = False


# The deadline of the call this thread is making, for the connection that reads its answer's head.
call_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "crazytelcall_deadline", default=None
)


def _cut(sock, deadline: Deadline) -> None:
    deadline.cut = True
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once


class DeadlineHeadMixin:
    """The status line and headers read within the call's deadline on the wall clock.

    http.client reads them line by line, and the socket's timeout bounds each read, not the whole:
    an upstream sending one byte a second would hold the worker as long as it liked. A timer shuts
    the socket down when the deadline passes (the body has its own check, `CrazytelClient._read_body`).
    """

    def getresponse(self):
        deadline = call_deadline.get()
        if deadline is None or self.sock is None:
            return super().getresponse()
        timer = threading.Timer(
            max(0.0, deadline.at - time.monotonic()), _cut, (self.sock, deadline)
        )
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse()
        finally:
            timer.cancel()


class DeadlineHTTPConnection(DeadlineHeadMixin, HTTPConnection):
    pass


class DeadlineHTTPSConnection(DeadlineHeadMixin, HTTPSConnection):
    pass


class DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = DeadlineHTTPConnection


class DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": DeadlineHTTPConnectionPool,
            "https": DeadlineHTTPSConnectionPool,
        }


def _new_session() -> requests.Session:
    session = requests.Session()
    # Connection pooling, and no automatic retries: the client decides what may be retried.
    adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=20, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # A session shared by every tenant must never carry one tenant's cookies to another's call.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def shared_session() -> requests.Session:
    """One pooled session per process, shared by every client (no credentials live on it)."""
    global _shared_session
    if _shared_session is None:
        with _session_lock:
            if _shared_session is None:
                _shared_session = _new_session()
    return _shared_session


def socket_of(response: requests.Response):
    """The socket a streamed response reads from (plain or TLS), or None if it cannot be found.

    http.client hands the socket to the response (and forgets it on the connection) when the
    answer ends with the connection, so look in the response's file first.
    """
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if sock is None:
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    return sock if hasattr(sock, "settimeout") else None
