"""Template context shared by every page."""

from django.utils.functional import SimpleLazyObject

from portal.fixed_urls import fixed_url
from trunks.access import user_best_role
from trunks.models import Role

# (label, url name, role needed in at least one tenant).
NAV_ITEMS = [
    ("New trunk", "trunks:create", Role.STAFF),
    # After "New trunk": the home page still opens the create form (the first item one may use).
    ("Trunks", "trunks:list", Role.STAFF),
    ("Bulk", "trunks:bulk", Role.STAFF),
    ("Audit log", "audit:list", Role.MANAGER),
    ("Tenants", "tenants:list", Role.ADMIN),
]


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    # Worked out only when a template renders the menu (htmx fragments do not), from the
    # request's one membership read, which the page's own checks and filters share.
    return {"nav_items": SimpleLazyObject(lambda: _nav_items(request, user))}


def _nav_items(request, user) -> list[dict]:
    best = user_best_role(user=user)
    items = []
    for label, url_name, needed in NAV_ITEMS:
        if best is None or not best.includes(needed):
            continue
        items.append({"label": label, "url": fixed_url(url_name), "active": False})
    # One item is the current page's: the longest URL the path starts with (/trunks/new/ is
    # "New trunk", not also "Trunks").
    matching = [item for item in items if request.path.startswith(item["url"])]
    if matching:
        max(matching, key=lambda item: len(item["url"]))["active"] = True
    return items


# Dark mode (issue 15): the theme a person chose with the header's toggle, remembered in a
# cookie that static/js/portal.js writes. Rendered into <html data-theme> so the page is drawn in
# that theme from its first paint (no flash); without the cookie, CSS follows
# prefers-color-scheme.
THEME_COOKIE = "portal_theme"
THEMES = ("light", "dark")


def theme_from(request) -> str:
    """The chosen theme ("light" or "dark"), or "" to follow the system's."""
    value = getattr(request, "COOKIES", {}).get(THEME_COOKIE, "")
    return value if value in THEMES else ""


def theme(request):
    return {"theme": theme_from(request)}
