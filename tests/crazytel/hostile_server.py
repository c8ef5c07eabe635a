"""A hostile Crazytel over real sockets (standard library): answers nested 200 000 deep, or drips
its body (or its headers) a byte at a time, one a second unless told otherwise. The tests' client
talks to it as it would to Crazytel."""

from __future__ import annotations

import socket
import threading
import time

NESTED = b"[" * 200_000 + b"]" * 200_000


class HostileServer:
    """`mode`: "nested" (a JSON body nested 200 000 deep, with `status`) or "drip" (headers at
    once, then the body one byte per `drip_every` seconds, for at most `drip_for` seconds) or
    "drip_head" (the status line at once, then the headers one byte per `drip_every` seconds)."""

    def __init__(self, *, mode: str, status: int = 200, drip_every: float = 1.0, drip_for=30.0):
        self.mode = mode
        self.status = status
        self.drip_every = drip_every
        self.drip_for = drip_for
        self.requests = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/api/v1"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            part = conn.recv(65536)
            if not part:
                return
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                break
            body += part
        self.requests += 1

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._read_request(conn)
                if self.mode == "nested":
                    conn.sendall(
                        f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(NESTED)}\r\nConnection: close\r\n\r\n".encode()
                        + NESTED
                    )
                    return
                body = b'{"username": "CT123456", "numbers": ["61298765432"]}' + b" " * 1000
                head = (
                    b"Content-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                )
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                if self.mode == "drip_head":
                    # Headers padded long enough to outlast any limit the tests use.
                    body, head = b"", b"X-Padding: " + b"x" * 1000 + b"\r\n" + head
                else:
                    conn.sendall(head)
                    head = b""
                # The upstream's own pace, not the test waiting: one byte, then a pause.
                ends = time.monotonic() + self.drip_for
                for byte in head + body:
                    if self._stop.is_set() or time.monotonic() > ends:
                        return
                    conn.sendall(bytes([byte]))
                    self._stop.wait(self.drip_every)
            except OSError:
                return
