"""7. Trunks at scale: /trunks/ at its first, a filtered and a deep page against Django admin's changelist.

Both read the same table of generated trunks (the project's `trunk_generate`) as a superuser, who
sees every tenant: the whole table. The filtered page is one staff member's suspended trunks; the
deep page starts half-way down the table — in the portal through its "Older trunks" link with a
cursor taken from the middle trunk, in the admin as the page number there.
"""

from urllib.parse import parse_qsl, urlencode, urlsplit

from .harness import Figure, Target, at_most, figure, interleaved_ms, median
from .portal import parse_page, queries_during, url_for

SECTION = "7"
TARGET_MS = 50
FIGURES = [
    ("trunks first page: server time", "ms", f"≤ {TARGET_MS} ms"),
    ("trunks filtered page (one creator, suspended): server time", "ms", f"≤ {TARGET_MS} ms"),
    ("trunks deep page (half-way): server time", "ms", f"≤ {TARGET_MS} ms"),
    ("trunks queries per page, first/filtered/deep", "queries", "the same on every page"),
]
ADMIN_PAGE_SIZE = 100  # Django admin's list_per_page default


def _get(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return response


def _with(url: str, **params) -> str:
    return f"{url}?{urlencode(params)}" if params else url


def middle_trunk(rows: int) -> dict:
    """The trunk half-way down the newest-first list, as the portal's cursor would name it."""
    from trunks.audit.paging import AuditCursor
    from trunks.models import Trunk

    index = rows // 2
    trunk = Trunk.objects.order_by("-created_at", "-id").only("id", "created_at", "created_by")[
        index
    ]
    return {
        "index": index,
        "cursor": str(AuditCursor(trunk.created_at, trunk.pk)),
        "creator": trunk.created_by_id,
    }


def portal_urls(client, list_url: str, middle: dict) -> dict[str, str]:
    """The portal's first/filtered/deep URLs, checked against its own page's filter and link."""
    page = parse_page(_get(client, list_url).content.decode())
    form = next((f for f in page.forms if "state" in f["fields"]), None)
    if form is None:
        raise RuntimeError("the trunk list has no state filter")
    if str(middle["creator"]) not in form["options"].get("creator", []):
        raise RuntimeError(f"the trunk list does not offer creator {middle['creator']}")
    following = [
        dict(parse_qsl(urlsplit(attrs["href"]).query))
        for attrs, _text in page.links
        if attrs.get("rel") == "next"
    ]
    if not following or "after" not in following[0]:
        raise RuntimeError("cannot find the trunk list's keyset link to older trunks")
    return {
        "first": list_url,
        "filtered": _with(list_url, creator=middle["creator"], state="suspended"),
        "deep": _with(list_url, after=middle["cursor"]),
    }


def run(ctx) -> list[Figure]:
    list_url = url_for("trunks:list", "trunk list")
    admin_url = "/admin/trunks/trunk/"
    from django.contrib import admin

    from trunks.models import Trunk

    if not admin.site.is_registered(Trunk):
        from .harness import FeatureMissing

        raise FeatureMissing("Trunk admin")
    rows = ctx.trunk_records()
    client = ctx.root_client
    middle = middle_trunk(rows)
    portal = portal_urls(client, list_url, middle)
    admin_pages = {
        "first": admin_url,
        "filtered": _with(admin_url, created_by__id__exact=middle["creator"], enabled__exact=0),
        "deep": _with(admin_url, p=middle["index"] // ADMIN_PAGE_SIZE),
    }
    figures: list[Figure] = []
    queries: dict[str, int] = {}
    admin_queries: dict[str, int] = {}
    for index, variant in enumerate(("first", "filtered", "deep")):
        samples = interleaved_ms(
            {
                "portal": lambda v=variant: _get(client, portal[v]),
                "admin": lambda v=variant: _get(client, admin_pages[v]),
            },
            repeats=ctx.config.audit_repeats,
            warmup=1,
        )
        queries[variant] = queries_during(lambda v=variant: _get(client, portal[v]))
        admin_queries[variant] = queries_during(lambda v=variant: _get(client, admin_pages[v]))
        note = f"{portal[variant]} vs {admin_pages[variant]}"
        if variant == "first":
            note += f"; {rows:,} trunks ({ctx.trunk_generation_note})"
        figures.append(
            figure(
                SECTION,
                FIGURES[index][0],
                median(samples["portal"]),
                "ms",
                reference=median(samples["admin"]),
                reference_label="admin changelist",
                target=at_most(TARGET_MS, "ms"),
                note=note,
                samples=samples["portal"],
            )
        )
    figures.append(
        figure(
            SECTION,
            FIGURES[3][0],
            max(queries.values()),
            "queries",
            reference=max(admin_queries.values()),
            reference_label="admin, most on a page",
            compare=False,
            # Neither depth nor a filter may cost queries (no COUNT, no OFFSET, none per row).
            target=Target("first = filtered = deep", lambda f: len(set(queries.values())) == 1),
            note="portal {} / admin {} (first/filtered/deep)".format(
                "/".join(str(queries[v]) for v in queries),
                "/".join(str(admin_queries[v]) for v in admin_queries),
            ),
        )
    )
    return figures
