"""Template context shared by every page."""

from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from trunks.models import ROLE_RANK, Role
from trunks.selectors import user_best_role

# (label, url name, role needed in at least one tenant). A page appears once its URL exists.
NAV_ITEMS = [
    ("New trunk", "trunks:create", Role.STAFF),
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
    role = user_best_role(user=user)
    best = ROLE_RANK[role] if role else 0
    items = []
    for label, url_name, needed in NAV_ITEMS:
        if best < ROLE_RANK[needed]:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        active = request.path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return items
