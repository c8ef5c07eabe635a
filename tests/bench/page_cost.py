"""What one page costs, as gunicorn calls it: CPU and wall time per request through Django's WSGI
handler (no test client), its SQL statements, and optionally a cProfile of the requests.

Not part of `make bench` (a tool for finding where a page's time goes). With the bench's settings
(DEBUG off, cached templates) on a database the bench made, e.g.:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pp_bench CACHE_URL=redis://127.0.0.1:6379/12 \\
      .venv/bin/python -m tests.bench.page_cost --user bench-root /healthz /__bench__/base/ /audit/

CPU is the request thread's (time.thread_time), which a busy machine inflates far less than wall
time. The first request of each URL is not timed; --profile adds a cProfile of --n more requests.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import environment

# Called without a session, as load balancers and bench section 5's wrk call it.
ANONYMOUS_PATHS = ("/healthz",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--user", default="bench-root", help="whose session (an existing user)")
    parser.add_argument("--n", type=int, default=200, help="timed requests per URL")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each URL")
    parser.add_argument(
        "--cpu", action="store_true", help="profile the thread's CPU time, not the wall clock"
    )
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key")
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--sql", action="store_true", help="print each URL's SQL statements")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="page-cost-"))
    environment.prepare_environ(workdir)
    environment.django_setup()
    environment.collect_static()

    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from .portal import session_cookie_for

    cookie = session_cookie_for(get_user_model().objects.get(username=args.user))
    app = WSGIHandler()

    def get(url: str) -> None:
        path, _, query = url.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
        }
        if path not in ANONYMOUS_PATHS:
            environ["HTTP_COOKIE"] = cookie
        status = []
        response = app(environ, lambda s, headers, *rest: status.append(s))
        b"".join(response)
        if not status[0].startswith("200"):
            raise RuntimeError(f"GET {url} answered {status[0]}")

    for url in args.urls:
        get(url)
        statements: list[str] = []

        def count(execute, sql, params, many, context, statements=statements):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            get(url)
        cpu, wall = [], []
        for _ in range(args.n):
            started_cpu, started = time.thread_time(), time.perf_counter()
            get(url)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
        print(
            f"{url}: {statistics.median(cpu):.2f} ms CPU, {statistics.median(wall):.2f} ms wall "
            f"(medians of {args.n}; CPU lowest decile {statistics.quantiles(cpu, n=10)[0]:.2f}), "
            f"{len(statements)} SQL statements; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        if args.sql:
            for sql in statements:
                print(f"    {sql[:160]}")
        if args.profile:
            profile = cProfile.Profile(time.thread_time) if args.cpu else cProfile.Profile()
            profile.enable()
            for _ in range(args.n):
                get(url)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.lines)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
