"""Template context shared by every page."""

from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from trunks.access import user_best_role
from trunks.models import Role

# (label, url name, role needed in at least one tenant).
NAV_ITEMS = [
    ("New trunk", "trunks:create", Role.STAFF),
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
        url = reverse(url_name)
        active = request.path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return items
