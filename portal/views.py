"""Project-level pages: each person's home page (what their roles let them do, and what needs
their attention), and the error pages."""

from django.http import HttpResponseServerError
from django.middleware.csp import get_nonce
from django.shortcuts import render
from django.template import loader

from portal.context_processors import theme_from
from trunks.access import is_superuser, user_tenants_at_least
from trunks.audit.selectors import audit_unknown_unresolved, audit_week_totals
from trunks.models import Role
from trunks.provisioning.selectors import trunk_attempts_recent_for, trunk_attempts_unknown_for
from trunks.tenants.selectors import tenant_list_needing_attention


def home(request):
    user = request.user
    staff = bool(user_tenants_at_least(user=user, min_role=Role.STAFF)) or is_superuser(user)
    manager = bool(user_tenants_at_least(user=user, min_role=Role.MANAGER)) or is_superuser(user)
    admin = bool(user_tenants_at_least(user=user, min_role=Role.ADMIN)) or is_superuser(user)
    context = {"staff": staff, "manager": manager, "admin": admin}
    if staff:
        context["recent_attempts"] = trunk_attempts_recent_for(user=user)
        context["my_unknown"] = trunk_attempts_unknown_for(user=user)
    if manager:
        context["tenant_unknown"] = audit_unknown_unresolved(user=user)
        context["week"] = audit_week_totals(user=user)
    if admin:
        context["tenants_attention"] = tenant_list_needing_attention(user=user)
    return render(request, "home.html", context)


def server_error(request):
    """The 500 page, rendered without the request's context: no context processor (the menu, the
    user) may read the database, which may be what failed. Keeps the reader's theme and the
    request id to quote."""
    template = loader.get_template("500.html")
    context = {
        "theme": theme_from(request),
        "request_id": getattr(request, "request_id", ""),
        "csp_nonce": get_nonce(request) or "",
    }
    return HttpResponseServerError(template.render(context))


def csrf_failure(request, reason=""):
    """A form sent without a valid CSRF token: the portal's own page (header and menu kept)."""
    return render(request, "403_csrf.html", {"reason": reason}, status=403)
