"""Template context shared by every page."""

from django.urls import NoReverseMatch, reverse

from trunks.models import ROLE_RANK, Membership, Role

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
    if user.is_superuser:
        best = ROLE_RANK[Role.ADMIN]
    else:
        # One query for the whole menu; evaluated lazily only when a template renders the menu.
        roles = Membership.objects.filter(user=user).values_list("role", flat=True).distinct()
        best = max((ROLE_RANK[Role(r)] for r in roles), default=0)
    items = []
    for label, url_name, role in NAV_ITEMS:
        if best < ROLE_RANK[role]:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        active = request.path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return {"nav_items": items}
