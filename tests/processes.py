"""Other processes on the test database: end their connections when a test is done with them.

A test that starts workers, gunicorn or forked processes on the PostgreSQL test database leaves
their server backends behind for a moment after the processes exit (or for good, when a process
hangs on): Django's DROP DATABASE at the end of the session then fails with "is being accessed by
other users" and the test database stays on the server. Each xdist worker has a test database of
its own, so ending every other backend on it touches no one else's.
"""

import socket
import subprocess
import sys
import time

from django.db import connections

DEADLINE = 30.0


def other_backends_end(alias: str = "default") -> None:
    """Terminate every other connection to this test database and wait until they are gone."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return
    query = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + DEADLINE
    with connection.cursor() as cursor:
        while True:
            cursor.execute(query)
            if not cursor.fetchall() or time.monotonic() > deadline:
                return
            time.sleep(0.05)


def listening_socket() -> socket.socket:
    """A socket listening on a free loopback port, for a server the test starts to inherit
    (gunicorn's `--bind fd://N`, with Popen's `pass_fds`). A request sent before the server is
    ready waits in the socket's backlog instead of being refused, so the test waits for its answer
    rather than polling, and no other process can take the port meanwhile. Close this process's
    copy once the server has started: should the server exit, the waiting request is then reset
    instead of left hanging."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def gunicorn_started(*, cwd, env: dict, workers: int = 1) -> tuple[subprocess.Popen, int]:
    """The portal under gunicorn on a listening_socket(): the process and its port. The first
    request waits in the socket's backlog until a worker has loaded the portal."""
    with listening_socket() as listener:
        bind = f"fd://{listener.fileno()}"
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", bind, "-w", str(workers)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(listener.fileno(),),
        )
        return process, listener.getsockname()[1]
