"""How the client reaches Crazytel: one pooled HTTP session per process, one call sent through
requests' adapter (`send`), and the call's deadline on the wall clock for the status line and headers
(trunks.crazytel.client reads the body within the same deadline). No credentials live here."""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import http.client
import http.cookiejar
import itertools
import os
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity, get_encoding_from_headers
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


class _Watchdog:
    """One thread per process that shuts down the sockets of calls past their deadline (a thread
    started for every call cost more than the rest of the client's work on it).

    A call is watched from when its answer is awaited until its head is in; once `unwatch` returns,
    its socket is never cut (cutting and unwatching take the same lock), so a pooled connection
    reused by the next call is safe. Unwatched entries stay in the heap until their time comes.
    """

    def __init__(self):
        self._pid = None

    def _start(self) -> None:
        # Per process: a worker forked after the parent started one has no thread of its own.
        self._pid = os.getpid()
        self._lock = threading.Condition()
        self._heap: list[list] = []
        self._order = itertools.count()
        threading.Thread(target=self._run, name="crazytel-deadlines", daemon=True).start()

    def watch(self, sock, deadline: Deadline) -> list:
        if self._pid != os.getpid():
            with _session_lock:
                if self._pid != os.getpid():
                    self._start()
        entry = [deadline.at, next(self._order), sock, deadline]
        with self._lock:
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._lock.notify()
        return entry

    def unwatch(self, entry: list) -> None:
        with self._lock:
            entry[2] = entry[3] = None  # kept no longer than its socket's use

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                _at, _order, sock, deadline = heapq.heappop(self._heap)
                _cut(sock, deadline)


_watchdog = _Watchdog()


# A header line as most servers send it: a name (RFC 9110 allows no space or colon in it), a colon,
# the value on the same line. Anything else goes to the standard parser.
_PLAIN_HEADER = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*)\r?\n")


def _parse_headers(fp) -> http.client.HTTPMessage:
    """http.client.parse_headers, the same message for the same lines, without the email package's
    parser when every line is a plain `Name: value` (that parser was a sixth of a call's CPU).
    A folded line, a bare CR, a line with no name or anything else odd: the standard parser."""
    lines = http.client._read_headers(fp)  # its limits on line length and count apply
    message = http.client.HTTPMessage()
    for line in lines[:-1]:  # (the last is the blank line, or b"" when the stream ended)
        plain = _PLAIN_HEADER.fullmatch(line.decode("iso-8859-1"))
        if plain is None:
            return http.client._parse_header_lines(lines)
        message.set_raw(plain[1], plain[2])
    if lines and lines[-1] not in (b"\r\n", b"\n"):
        return http.client._parse_header_lines(lines)
    message.set_payload("")  # as the parser leaves it: nothing after the blank line
    return message


class _HTTPResponse(http.client.HTTPResponse):
    """http.client's response, its head read by `_parse_headers`; `begin` is the standard one
    (Python 3.12's) but for that line."""

    def begin(self):
        if self.headers is not None:
            return
        while True:  # until a response that is not 100 Continue
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            http.client._read_headers(self.fp)
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = _parse_headers(self.fp)
        transfer_encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(transfer_encoding and transfer_encoding.lower() == "chunked")
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"
        ):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True


class DeadlineHeadMixin:
    """The status line and headers read within the call's deadline on the wall clock.

    http.client reads them line by line, and the socket's timeout bounds each read, not the whole:
    an upstream sending one byte a second would hold the worker as long as it liked. The process's
    watchdog shuts the socket down when the deadline passes (the body has its own check,
    `CrazytelClient._read_body`).
    """

    def getresponse(self):
        deadline = call_deadline.get()
        if deadline is None or self.sock is None:
            return super().getresponse()
        entry = _watchdog.watch(self.sock, deadline)
        try:
            return super().getresponse()
        finally:
            _watchdog.unwatch(entry)


class DeadlineHTTPConnection(DeadlineHeadMixin, HTTPConnection):
    response_class = _HTTPResponse


class DeadlineHTTPSConnection(DeadlineHeadMixin, HTTPSConnection):
    response_class = _HTTPResponse


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

    def build_response(self, req, resp) -> requests.Response:
        """requests' Response for urllib3's, without reading cookies from it (no call keeps one)
        and with urllib3's headers as they are (already case-insensitive): read per call, copying
        them and looking for cookies were a tenth of the client's CPU."""
        response = requests.Response()
        response.status_code = getattr(resp, "status", None)
        response.headers = getattr(resp, "headers", None) or CaseInsensitiveDict()
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url
        response.request = req
        response.connection = self
        return response


class _Session(requests.Session):
    """requests' session, reading the environment's proxy and CA bundle settings once per origin
    and process rather than on every call (scanning os.environ for proxies twice per call was a
    tenth of the client's CPU). The environment of a running process does not change."""

    _ENVIRONMENTS_MAX = 64

    def __init__(self):
        super().__init__()
        self._environments: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, tuple(sorted(proxies.items())), stream, verify, cert)
        found = self._environments.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environments) >= self._ENVIRONMENTS_MAX:
                self._environments.clear()
            self._environments[key] = found
        return {**found, "proxies": dict(found["proxies"])}


# Sent with every call (the caller's headers add to them). An answer is read as it comes (the
# client's `_read_body`, urllib3 decoding nothing), so it must not come compressed.
BASE_HEADERS = {"Accept-Encoding": "identity", "Connection": "keep-alive"}
_URLS_MAX = 256
_prepared_urls: dict[str, str] = {}


def _prepared_url(url: str) -> str:
    """`url` as requests sends it (checked, its host IDNA-encoded, quoted): once per URL."""
    found = _prepared_urls.get(url)
    if found is None:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        found = prepared.url
        if len(_prepared_urls) >= _URLS_MAX:
            _prepared_urls.clear()
        _prepared_urls[url] = found
    return found


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | None,
    timeout: tuple[float, float],
) -> requests.Response:
    """One call through the session's adapter (requests' transport: its pool, TLS, proxies and
    errors), streamed, never redirected.

    `Session.request` does work per call whose outcome is the same on every portal call: merging
    the session's headers, cookies, auth and hooks into a new request, looking for ~/.netrc
    credentials (the key travels in its own header; no other credential is to be sent), putting
    the answer's cookies in a jar whose policy refuses every cookie, and preparing a redirect that
    is never followed. Here the request is built once, as `Session.prepare_request` would for
    these arguments; the environment's proxy and CA settings come from the session (read once per
    origin by `_Session`)."""
    prepared = requests.PreparedRequest()
    prepared.method = method
    prepared.url = _prepared_url(url)
    all_headers = CaseInsensitiveDict(BASE_HEADERS)
    for header in headers.items():
        check_header_validity(header)  # no line break smuggled into the request
        all_headers[header[0]] = header[1]
    if body is not None:
        all_headers["Content-Length"] = str(len(body))
    elif method not in ("GET", "HEAD"):
        all_headers["Content-Length"] = "0"
    prepared.headers = all_headers
    prepared.body = body
    environment = session.merge_environment_settings(prepared.url, {}, True, None, None)
    return session.get_adapter(prepared.url).send(
        prepared,
        stream=True,
        timeout=timeout,
        verify=environment["verify"],
        cert=environment["cert"],
        proxies=environment["proxies"],
    )


def _new_session() -> requests.Session:
    session = _Session()
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
