"""2. Create overhead: a whole create through the portal against a direct client call to the same sandbox.

The portal's path is the browser's: the form's htmx POST → view → service → client → the sandbox over
real HTTP (its own gunicorn) → audit record → the result fragment with the new username. The reference
is `CrazytelClient.create_sip_trunk` with the same payload against the same sandbox, one call after
the other (order alternating), so the paired difference is what the portal itself adds.
"""

import time

from .harness import Figure, at_most, figure, median, time_ms
from .portal import (
    USERNAME_RE,
    queries_during,
    trunk_form_fields,
    trunk_payload,
    trunk_post_data,
    url_for,
)

SECTION = "2"
FIGURES = [
    ("create through the portal: server time", "ms", ""),
    ("create: what the portal adds (median of pairs)", "ms", "≤ 8 ms"),
    ("create through the portal: CPU time in the portal process", "ms", "≤ 5 ms"),
    ("create through the portal: queries", "queries", "≤ 7"),
]


def crazytel_client_class():
    try:
        from trunks.crazytel.client import CrazytelClient
    except ImportError:
        from .harness import FeatureMissing

        raise FeatureMissing("Crazytel client") from None
    return CrazytelClient


def form_open(lane, url: str) -> dict:
    response = lane.client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return trunk_form_fields(response.content.decode())


def portal_post(client, url: str, data: dict):
    """The form's htmx POST, following a redirect if the portal answers with one. Encoded as htmx
    sends it (application/x-www-form-urlencoded: the form has no file field), not as the test
    client's default multipart body, whose parsing a browser's request never costs."""
    from urllib.parse import urlencode

    from django.conf import settings

    csrf = client.cookies.get(settings.CSRF_COOKIE_NAME)
    headers = {"HX-Request": "true", "HX-Current-URL": f"http://testserver{url}"}
    if csrf is not None:
        headers["X-CSRFToken"] = csrf.value
    response = client.post(
        url,
        urlencode(data, doseq=True),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )
    location = response.headers.get("HX-Redirect") or (
        response.headers.get("Location") if response.status_code in (301, 302, 303) else None
    )
    if location:
        response = client.get(location, headers={"HX-Request": "true"})
    return response


def cpu_ms(fn) -> float:
    """CPU time this thread spent in `fn`: the portal's own work, whatever else the machine runs."""
    start = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - start) / 1e6


def portal_create(lane, url: str) -> tuple[float, float]:
    form = form_open(lane, url)
    data = trunk_post_data(form, trunk_payload(form))
    result = {}

    def post():
        result["response"] = portal_post(lane.client, url, data)

    cpu = {}
    elapsed = time_ms(lambda: cpu.update(ms=cpu_ms(post)))
    response = result["response"]
    body = response.content.decode(errors="replace")
    if response.status_code != 200 or not USERNAME_RE.search(body):
        raise RuntimeError(
            f"the portal's create did not show a new username (HTTP {response.status_code}): "
            f"{' '.join(body.split())[:300]}"
        )
    return elapsed, cpu["ms"]


def run(ctx) -> list[Figure]:
    url = url_for("trunks:create", "trunk form")
    client_class = crazytel_client_class()
    lanes = ctx.lanes
    payloads = {}
    for lane in lanes:  # Fill each tenant's numbers cache, as a staff member's first visit would.
        payloads[lane.tenant.pk] = trunk_payload(form_open(lane, url))
        lane.extra["direct"] = client_class(
            base_url=lane.tenant.effective_base_url, api_key=lane.api_key
        )

    def direct_create(lane) -> tuple[float, float]:
        payload = dict(payloads[lane.tenant.pk], password=trunk_payload_password())
        created, cpu = {}, {}

        def call():
            created["trunk"] = lane.extra["direct"].create_sip_trunk(payload)

        elapsed = time_ms(lambda: cpu.update(ms=cpu_ms(call)))
        if not USERNAME_RE.fullmatch(created["trunk"].username):
            raise RuntimeError(f"direct create returned {created['trunk'].username!r}")
        return elapsed, cpu["ms"]

    warmup, repeats = 2, ctx.config.create_repeats
    portal_ms, direct_ms, added, portal_cpu, direct_cpu = [], [], [], [], []
    for i in range(warmup + repeats):
        lane = lanes[i % len(lanes)]
        if i % 2:
            d, d_cpu = direct_create(lane)
            p, p_cpu = portal_create(lane, url)
        else:
            p, p_cpu = portal_create(lane, url)
            d, d_cpu = direct_create(lane)
        if i >= warmup:
            portal_ms.append(p)
            direct_ms.append(d)
            added.append(p - d)
            portal_cpu.append(p_cpu)
            direct_cpu.append(d_cpu)

    lane = lanes[-1]
    form = form_open(lane, url)
    data = trunk_post_data(form, trunk_payload(form))
    create_queries, sql_ms = queries_during(
        lambda: portal_post(lane.client, url, data), with_time=True
    )

    direct = median(direct_ms)
    return [
        figure(
            SECTION,
            FIGURES[0][0],
            median(portal_ms),
            "ms",
            reference=direct,
            reference_label="direct client call",
            samples=portal_ms,
            note=f"{repeats} creates each way over {len(lanes)} tenants/keys, sandbox on its own gunicorn",
        ),
        figure(
            SECTION,
            FIGURES[1][0],
            median(added),
            "ms",
            reference=direct,
            reference_label="direct client call",
            ratio=median(portal_ms) / direct,
            target=at_most(8, "ms"),
            samples=added,
        ),
        figure(
            SECTION,
            FIGURES[2][0],
            median(portal_cpu),
            "ms",
            reference=median(direct_cpu),
            reference_label="direct client call",
            target=at_most(5, "ms"),
            note="CPU time of the request's thread: the portal's own work, unaffected by waiting",
            samples=portal_cpu,
        ),
        figure(
            SECTION,
            FIGURES[3][0],
            create_queries,
            "queries",
            target=at_most(7),
            note=f"{sql_ms:.1f} ms executing SQL (one create, measured apart)",
        ),
    ]


def trunk_payload_password() -> str:
    from .portal import strong_password

    return strong_password()
