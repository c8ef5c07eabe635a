"""`python -m tests.bench.profile`: where a form view, a create and the audit log spend their time
(cProfile).

Sets up as `make bench` does (production settings, its own database, the sandbox on its own
gunicorn, one staff member per tenant), then runs the form's GET, the create's htmx POST and
(`--only audit`) the audit log's first page as a superuser `--requests` times each under cProfile
and prints, per request:

- a "where the time goes" table: the cumulative time of the steps every request passes through
  (the session and user, the view's parts, the rendering, the upstream call, the audit writes),
  as the profiler saw them (its own overhead included, so read the shares, not the absolute times);
- the SQL statements one request runs (`--sql`), and the portal functions with the most own and
  cumulative time (`--top N`);
- with `--layers`, each middleware's own CPU (its work before and after the layers inside it), each
  context processor's, URL resolving, the view and the rendering, and the lazy steps (the session
  read, the user, the menu, the CSRF token), timed with the thread's CPU clock and no profiler
  (tests/bench/layers.py).

`--only base` adds the bench's bare view (`/__bench__/base/`, base.html and nothing else): the floor
every signed-in page pays.

    make install && .venv/bin/python -m tests.bench.profile --sql
    DATABASE_URL=postgres://…/w3f CACHE_URL=redis://…/9 .venv/bin/python -m tests.bench.profile
"""

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import environment

# (label, [(path fragment, function name), ...]): the steps shown, by the functions that do them.
# A step's time is the summed cumulative time of its functions (none nested within another).
FORM_STEPS = [
    ("the whole request (test client → response)", [("django/test/client.py", "request")]),
    # The session is read when the user is (the user's id is in it), from the cache or the database.
    ("  session load and user (middleware)", [("portal/user_cache.py", "user_from_session")]),
    ("  the view", [("provisioning/views.py", "trunk_create_view")]),
    ("    the reader's tenants and roles (a query)", [("trunks/access.py", "user_tenants_loaded")]),
    ("    verified numbers (cache read)", [("provisioning/numbers.py", "verified_numbers_get")]),
    ("    the form built (choices formatted)", [("provisioning/forms.py", "__init__")]),
    ("    the submission token signed", [("provisioning/tokens.py", "submission_token_issue")]),
    (
        "    recent unknown outcomes",
        [("provisioning/selectors.py", "trunk_attempts_unknown_recent")],
    ),
    ("    the menu's tenants and roles", [("trunks/access.py", "user_tenant_access")]),
    ("  template rendering", [("django/template/response.py", "render")]),
    (
        "    CSRF token masked",
        [("django/middleware/csrf.py", "get_token"), ("portal/csrf.py", "csrf_token_masked")],
    ),
    ("  session saved (middleware)", [("contrib/sessions/backends/db.py", "save")]),
]

BASE_STEPS = [
    ("the whole request (test client → response)", [("django/test/client.py", "request")]),
    ("  session load and user (middleware)", [("portal/user_cache.py", "user_from_session")]),
    ("  template rendering", [("django/template/backends/django.py", "render")]),
]

CREATE_STEPS = [
    ("the whole request (test client → response)", [("django/test/client.py", "request")]),
    # The session is read when the user is (the user's id is in it), from the cache or the database.
    ("  session load and user (middleware)", [("portal/user_cache.py", "user_from_session")]),
    ("  the reader's tenants and roles (a query)", [("trunks/access.py", "user_tenants_loaded")]),
    ("  the view", [("provisioning/views.py", "_trunk_create_post")]),
    (
        "    earlier attempt with this token",
        [("provisioning/selectors.py", "trunk_attempt_for_submission")],
    ),
    ("    verified numbers (cache read)", [("provisioning/numbers.py", "verified_numbers_get")]),
    ("    form checks (token, fields, password)", [("django/forms/forms.py", "is_valid")]),
    ("    trunk_create (service)", [("provisioning/services.py", "trunk_create")]),
    ("      pending record committed", [("audit/writer.py", "audit_attempt_start")]),
    (
        "      client for the tenant (key decrypted)",
        [("tenants/upstream.py", "crazytel_client_for")],
    ),
    ("      upstream call (HTTP to the sandbox)", [("crazytel/transport.py", "send")]),
    ("      rate limiter: take a token", [("crazytel/ratelimit.py", "acquire")]),
    ("      rate limiter: note the result", [("crazytel/ratelimit.py", "note_result")]),
    ("      final record sealed (chain)", [("audit/writer.py", "audit_attempt_finish")]),
    (
        "      Trunk record built (written with the final record)",
        [
            ("lifecycle/records.py", "trunk_row_from_attempt"),
            ("trunks/rows.py", "row_insert_statement"),
        ],
    ),
    (
        "      audit cache generation bumps (Redis)",
        [("audit/cache.py", "_bump"), ("audit/cache.py", "committed")],
    ),
    ("  template rendering", [("django/template/response.py", "render")]),
    ("  session saved (middleware)", [("contrib/sessions/backends/db.py", "save")]),
]

AUDIT_STEPS = [
    ("the whole request (test client → response)", [("django/test/client.py", "request")]),
    ("  session load and user (middleware)", [("portal/user_cache.py", "user_from_session")]),
    ("  the view", [("audit/views.py", "audit_list")]),
    ("    manager check (the reader's tenants)", [("audit/views.py", "_require_manager")]),
    ("    filters bound (form, tenants, people)", [("audit/selectors.py", "audit_filterset")]),
    ('      the "Who" list (cache read)', [("audit/selectors.py", "audit_actor_choices")]),
    ("    the log's version (one statement)", [("audit/selectors.py", "audit_log_version")]),
    ("    results: kept, or rendered", [("audit/rendered.py", "audit_results_html")]),
    ("      the page's records (the query)", [("audit/paging.py", "audit_page")]),
    ("      rows worked out (columns, times)", [("audit/views.py", "_list_rows")]),
    ("      rows written as markup", [("audit/views.py", "_rows_html")]),
    ("      paging and export links", [("audit/views.py", "_query")]),
    ("    filter fields (rendered once per values)", [("audit/filters.py", "filter_fields_html")]),
    ("    template rendering", [("django/shortcuts.py", "render")]),
    ("      context processors", [("django/template/context.py", "bind_template")]),
    (
        "      CSRF token masked",
        [("django/middleware/csrf.py", "get_token"), ("portal/csrf.py", "csrf_token_masked")],
    ),
    ("  session saved (middleware)", [("contrib/sessions/backends/db.py", "save")]),
]


def step_seconds(stats: pstats.Stats, functions) -> tuple[float, int]:
    """Summed cumulative seconds and calls of the functions matching `functions`."""
    total, calls = 0.0, 0
    for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
        for fragment, wanted in functions:
            if name == wanted and fragment in filename.replace("\\", "/"):
                total += ct
                calls += nc
    return total, calls


def steps_table(stats: pstats.Stats, steps, requests: int) -> str:
    rows = []
    whole, _ = step_seconds(stats, steps[0][1])
    for label, functions in steps:
        seconds, calls = step_seconds(stats, functions)
        share = f"{100 * seconds / whole:.0f} %" if whole else ""
        per_request = calls / requests
        rows.append(
            f"| {label.ljust(46)} | {1000 * seconds / requests:7.2f} ms | {share:>5} | "
            f"{per_request:g}x |"
        )
    head = f"| {'step (per request, under cProfile)'.ljust(46)} | {'time':>10} | share | calls |"
    return "\n".join(
        [head, "| " + " | ".join(["-" * 46, "-" * 10, "-----", "-----"]) + " |", *rows]
    )


def top_table(stats: pstats.Stats, requests: int, count: int, key: int) -> str:
    """The portal's and Django's functions with the most own (key=2) or cumulative (key=3) time."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][key], reverse=True)[:count]
    out = []
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in rows:
        where = filename.split("site-packages/")[-1].split("/work/")[-1]
        out.append(
            f"  {1000 * tt / requests:7.2f} own {1000 * ct / requests:7.2f} cum "
            f"{nc / requests:6.1f}x  {where}:{line} {name}"
        )
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile", description=__doc__)
    parser.add_argument("--requests", type=int, default=30, help="profiled requests of each kind")
    parser.add_argument(
        "--only",
        default="form,create",
        help="any of form, create, audit and base (the bare view rendering base.html), comma-separated",
    )
    parser.add_argument("--sql", action="store_true", help="list one request's SQL statements")
    parser.add_argument("--db-name", help="the database to create (default as make bench)")
    parser.add_argument(
        "--audit-afresh",
        action="store_true",
        help="drop the audit log's kept results before each request (the first view after a "
        "write: the page's query and rendering)",
    )
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the database (and its records) for next time"
    )
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest functions")
    parser.add_argument(
        "--save", help="also write each profile's statistics to SAVE-form.prof / SAVE-create.prof"
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also time each middleware, context processor and lazy step with the thread's CPU "
        "clock alone, no profiler (tests/bench/layers.py)",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="profile the thread's CPU time instead of the wall clock (waiting on sockets, locks "
        "and disks left out: what the portal's own work costs)",
    )
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",")}

    workdir = Path(tempfile.mkdtemp(prefix="portal-profile-"))
    environment.prepare_environ(workdir)
    environment.django_setup()
    environment.collect_static()
    layers = None
    if args.layers:
        from . import layers as layers_module

        layers = layers_module.Layers()
        layers_module.install(layers)
        args.layers = layers
    from .context import Context
    from .create_overhead import form_open, portal_post
    from .form_page import get_ok
    from .portal import trunk_payload, trunk_post_data, url_for
    from .runner import MODES, Config, describe_stack, log, machine

    config = Config(mode="quick", **dict(MODES["quick"], create_repeats=args.requests))
    db = environment.BenchDatabase(keep=args.keep_db, name=args.db_name, workdir=workdir)
    ctx = None
    try:
        db.create()
        ctx = Context(config=config, db=db, workdir=workdir, log=log)
        stack = describe_stack(db)
        info = machine()
        print(
            f"{stack['database']}, cache {stack['cache']}; {info['nproc']} CPU {info['cpu']}; "
            f"load average {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}"
        )
        url = url_for("trunks:create", "trunk form")
        lanes = ctx.lanes
        for lane in lanes:
            form_open(lane, url)  # each tenant's numbers cached, as after a first visit

        if "base" in only:
            client = lanes[0].client
            base = "/__bench__/base/"
            for _ in range(3):
                get_ok(client, base)
            report(
                "GET /__bench__/base/ (the bare view)",
                lambda: get_ok(client, base),
                BASE_STEPS,
                args,
                "base",
            )

        if "form" in only:
            client = lanes[0].client
            for _ in range(3):
                get_ok(client, url)
            report("GET /trunks/new/", lambda: get_ok(client, url), FORM_STEPS, args, "form")

        if "audit" in only:
            # The log's first page as a superuser sees it (the whole table), records as in `make
            # bench` (audit_generate, --quick's 20,000; kept with --db-name and --keep-db).
            ctx.audit_records()
            audit_url = url_for("audit:list", "audit log")
            client = ctx.root_client
            for _ in range(3):
                get_ok(client, audit_url)

            def audit_get():
                if args.audit_afresh:
                    from trunks.audit.rendered import RESULTS

                    RESULTS.clear()
                get_ok(client, audit_url)

            title = "GET /audit/" + (" (results rendered afresh)" if args.audit_afresh else "")
            report(title, audit_get, AUDIT_STEPS, args, "audit")

        if "create" in only:
            posts = []
            for i in range((3 if args.layers else 2) * args.requests + 4):
                lane = lanes[i % len(lanes)]
                form = form_open(lane, url)
                posts.append((lane, trunk_post_data(form, trunk_payload(form))))
            for lane, data in posts[:3]:
                portal_post(lane.client, url, data)
            queue = iter(posts[3:])

            def create():
                lane, data = next(queue)
                response = portal_post(lane.client, url, data)
                if response.status_code != 200 or b"CT" not in response.content:
                    raise RuntimeError("the create did not succeed")

            report("POST /trunks/new/ (a create)", create, CREATE_STEPS, args, "create")
    finally:
        if ctx is not None:
            ctx.close()
        db.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(title: str, fn, steps, args, name: str) -> None:
    """`fn` run `--requests` times unprofiled (wall and CPU), once for its SQL, then as many times
    under cProfile."""
    from .portal import queries_count, statements_during

    requests = args.requests
    wall, cpu = [], []
    for _ in range(requests):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.thread_time() - start_cpu))
    statements = statements_during(fn)
    if args.layers:
        from .layers import table

        for _ in range(requests):
            args.layers.run(fn)
        print(f"\n## {title}: CPU per layer (median ms of {requests}, no profiler)\n")
        print(table(args.layers))
        args.layers.samples.clear()
    profiler = cProfile.Profile(time.thread_time) if args.cpu else cProfile.Profile()
    for _ in range(requests):
        profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    if args.save:
        stats.dump_stats(f"{args.save}-{name}.prof")
    wall.sort()
    cpu.sort()
    print(f"\n## {title}")
    print(
        f"unprofiled: median {wall[len(wall) // 2]:.2f} ms wall, {cpu[len(cpu) // 2]:.2f} ms CPU "
        f"over {requests} requests; {queries_count(statements)} queries (transaction control "
        f"not counted); then {requests} requests under cProfile "
        f"({'CPU time' if args.cpu else 'wall clock'})\n"
    )
    print(steps_table(stats, steps, requests))
    if args.sql:
        print(f"\nSQL of one request ({len(statements)} statements, transaction control included):")
        for sql, ms in statements:
            print(f"  {ms:6.2f} ms  {' '.join(sql.split())[:160]}")
    if args.top:
        print(f"\nmost own time (ms per request):\n{top_table(stats, requests, args.top, 2)}")
        print(f"\nmost cumulative time:\n{top_table(stats, requests, args.top, 3)}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
