"""`python -m tests.bench.create_steps [N]`: the thread's CPU time per step of a create, without a
profiler (cProfile's per-call cost inflates the ORM's many small calls; this wraps a few functions
with `time.thread_time_ns()` and nothing else).

Sets up as `tests.bench.profile` does (production settings, its own database, named by
`STEPS_DB` or as `make bench` names it, the sandbox on its own gunicorn), posts N creates through
the form's htmx POST (default 40) unwrapped for the request's CPU and wall time, then N more with
the steps wrapped, and prints each step's median and mean per call, its calls per request and its
time per request. A step nested in itself is counted once.
"""

import functools
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import environment

STEPS = [
    ("tenants read", "trunks.provisioning.views", "user_tenants_loaded"),
    ("view", "trunks.provisioning.views", "_trunk_create_post"),
    ("numbers", "trunks.provisioning.views", "verified_numbers_get"),
    ("form init", "trunks.provisioning.views", "TrunkCreateForm"),
    ("trunk_create", "trunks.provisioning.views", "trunk_create"),
    ("render ctx", "trunks.provisioning.views", "_render"),
    ("attempt_start", "trunks.provisioning.services", "audit_attempt_start"),
    ("client_for", "trunks.provisioning.services", "crazytel_client_for"),
    ("attempt_finish", "trunks.provisioning.services", "audit_attempt_finish"),
    ("trunk row built", "trunks.provisioning.services", "trunk_row_from_attempt"),
    ("session.request", "requests.sessions", "Session.request"),
    ("rl acquire", "trunks.crazytel.ratelimit", "RateLimiter.acquire"),
    ("rl note_result", "trunks.crazytel.ratelimit", "RateLimiter.note_result"),
    ("invalidate", "trunks.audit.writer", "audit_cache_invalidate"),
    ("hash", "trunks.audit.writer", "record_hash_compute"),
    ("tmpl render", "django.template.response", "SimpleTemplateResponse.render"),
    ("get_user", "django.contrib.auth", "get_user"),
    ("handler", "django.core.handlers.base", "BaseHandler.get_response"),
    # Finer steps (calls per request printed: a median is per call).
    ("sql execute", "django.db.backends.utils", "CursorWrapper.execute"),
    ("form is_valid", "django.forms.forms", "BaseForm.is_valid"),
    ("token checked", "trunks.provisioning.forms", "submission_token_nonce"),
    ("key decrypted", "trunks.tenants.upstream", "api_key_decrypt"),
    ("limiter built", "trunks.crazytel.ratelimit", "RateLimiter.__init__"),
    ("request prepared", "requests.sessions", "Session.prepare_request"),
    ("adapter send", "requests.adapters", "HTTPAdapter.send"),
    ("body read", "trunks.crazytel.client", "CrazytelClient._read_body"),
    ("call logged", "trunks.crazytel.client", "_call_observe"),
    ("answer parsed", "trunks.crazytel.client", "parse_created_trunk"),
    ("audit links", "trunks.provisioning.views", "_audit_links"),
    ("model init", "django.db.models.base", "Model.__init__"),
    ("row params", "trunks.rows", "_params"),
    ("atomic exit", "django.db.transaction", "Atomic.__exit__"),
]

ACC: dict[str, list[int]] = {}
DEPTH: dict[str, int] = {}


def wrap(label, fn):
    @functools.wraps(fn)
    def inner(*a, **k):
        if DEPTH.get(label):
            return fn(*a, **k)
        DEPTH[label] = 1
        t = time.thread_time_ns()
        try:
            return fn(*a, **k)
        finally:
            ACC.setdefault(label, []).append(time.thread_time_ns() - t)
            DEPTH[label] = 0

    return inner


def patch():
    for label, mod, attr in STEPS:
        m = importlib.import_module(mod)
        if "." in attr:
            cls, name = attr.split(".")
            owner = getattr(m, cls)
        else:
            owner, name = m, attr
        setattr(owner, name, wrap(label, getattr(owner, name)))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    workdir = Path(tempfile.mkdtemp(prefix="pc-steps-"))
    environment.prepare_environ(workdir)
    environment.django_setup()
    environment.collect_static()
    from .context import Context
    from .create_overhead import form_open, portal_post
    from .portal import statements_during, trunk_payload, trunk_post_data, url_for
    from .runner import MODES, Config, log

    config = Config(mode="quick", **dict(MODES["quick"], create_repeats=n))
    db = environment.BenchDatabase(keep=False, name=os.environ.get("STEPS_DB"), workdir=workdir)
    ctx = None
    try:
        db.create()
        ctx = Context(config=config, db=db, workdir=workdir, log=log)
        url = url_for("trunks:create", "trunk form")
        lanes = ctx.lanes
        for lane in lanes:
            form_open(lane, url)
        posts = []
        for i in range(2 * n + 6):
            lane = lanes[i % len(lanes)]
            form = form_open(lane, url)
            posts.append((lane, trunk_post_data(form, trunk_payload(form))))
        q = iter(posts)

        def create():
            lane, data = next(q)
            r = portal_post(lane.client, url, data)
            if r.status_code != 200 or b"CT" not in r.content:
                raise RuntimeError("create failed")

        for _ in range(5):
            create()
        sql = statements_during(create)
        plain = []
        for _ in range(n // 2):
            t = time.thread_time_ns()
            w = time.perf_counter()
            create()
            plain.append(((time.thread_time_ns() - t) / 1e6, (time.perf_counter() - w) * 1e3))
        patch()
        ACC.clear()
        for _ in range(n):
            t = time.thread_time_ns()
            create()
            ACC.setdefault("TOTAL", []).append(time.thread_time_ns() - t)
        print(f"load {os.getloadavg()}; {len(sql)} statements")
        for s, ms in sql:
            print(f"   {ms:6.2f} ms {' '.join(s.split())[:150]}")
        print(
            f"unwrapped: CPU median {statistics.median(p[0] for p in plain):.2f} ms, "
            f"wall median {statistics.median(p[1] for p in plain):.2f} ms"
        )
        for label in ["TOTAL"] + [s[0] for s in STEPS]:
            v = ACC.get(label, [])
            if v:
                print(
                    f"  {label:16} median {statistics.median(v) / 1e6:6.3f} ms "
                    f"mean {statistics.mean(v) / 1e6:6.3f} calls/req {len(v) / n:.1f} "
                    f"per request {sum(v) / n / 1e6:6.3f} ms"
                )
    finally:
        if ctx is not None:
            ctx.close()
        db.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
