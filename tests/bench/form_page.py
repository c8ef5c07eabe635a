"""1. The form page with its numbers cached: server time and queries against a bare base-template view."""

from .harness import Figure, at_most, figure, interleaved_ms, median, ratio_at_most
from .portal import queries_during, url_for

SECTION = "1"
FIGURES = [
    ("form page /trunks/new/: server time", "ms", "ratio ≤ 2"),
    ("form page /trunks/new/: queries", "queries", "≤ 5"),
]
REFERENCE_URL = "/__bench__/base/"


def get_ok(client, url: str, **extra):
    response = client.get(url, **extra)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return response


def count_queries(client, url: str) -> int:
    return queries_during(lambda: get_ok(client, url))


def run(ctx) -> list[Figure]:
    url = url_for("trunks:create", "trunk form")
    client = ctx.lanes[0].client
    # Warm-up: the first view fills the numbers cache; the page must then offer the numbers.
    html = get_ok(client, url).content.decode()
    if "caller_id_number" not in html:
        raise RuntimeError("the form page has no caller_id_number field")
    upstream_before = ctx.sandbox_calls("verified-cli")
    samples = interleaved_ms(
        {"form": lambda: get_ok(client, url), "base": lambda: get_ok(client, REFERENCE_URL)},
        repeats=ctx.config.repeats,
        warmup=2,
    )
    upstream = ctx.sandbox_calls("verified-cli") - upstream_before
    form_queries = count_queries(client, url)
    base_queries = count_queries(client, REFERENCE_URL)
    note = (
        f"{upstream} verified-numbers call(s) upstream over "
        f"{2 * ctx.config.repeats + 2} timed and warm-up views after the first"
    )
    return [
        figure(
            SECTION,
            FIGURES[0][0],
            median(samples["form"]),
            "ms",
            reference=median(samples["base"]),
            reference_label="bare view, base.html",
            target=ratio_at_most(2),
            note=note,
            samples=samples["form"],
        ),
        figure(
            SECTION,
            FIGURES[1][0],
            form_queries,
            "queries",
            reference=base_queries,
            reference_label="bare view",
            target=at_most(5),
        ),
    ]
