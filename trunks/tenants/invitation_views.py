"""A person's own invitations (/invitations/): accept or decline each. Shown once after sign-in
when any are open (portal.middleware.InvitationPromptMiddleware), and reachable any time."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from trunks.errors import NotFound

from .invitations import invitation_accept, invitation_decline, invitations_pending_for


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@require_http_methods(["GET"])
def invitation_list(request: HttpRequest) -> HttpResponse:
    invitations = list(invitations_pending_for(user=request.user))
    return render(
        request,
        "tenants/invitations.html",
        {"invitations": invitations, "next": _next(request)},
    )


@require_POST
def invitation_answer(request: HttpRequest, pk: int) -> HttpResponse:
    answer = request.POST.get("answer")
    if answer not in ("accept", "decline"):
        messages.error(request, "Choose whether to accept or decline the invitation.")
        return redirect("invitations:list")
    try:
        if answer == "accept":
            membership = invitation_accept(user=request.user, invitation_id=pk, request=request)
            messages.success(
                request,
                f"You joined {membership.tenant.name} as {membership.get_role_display()}.",
            )
        else:
            tenant = invitation_decline(user=request.user, invitation_id=pk, request=request)
            messages.success(request, f"You declined the invitation to {tenant.name}.")
    except NotFound:
        raise Http404("That invitation is no longer open.") from None
    if invitations_pending_for(user=request.user).exists():
        return redirect("invitations:list")
    return redirect(_next(request))
