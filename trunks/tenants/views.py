"""The admins' pages at /tenants/: tenants, their API keys and connection, their members.

Every view finds its tenant through `tenant_get_for(..., min_role=ADMIN)`: another tenant's pages
(and tenants where the user is not an admin) answer 404. Each form works as a plain POST with a
redirect, and with htmx as a swap of its section (partials in templates/tenants/detail.html).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from trunks.access import tenant_get_for
from trunks.errors import NotFound, PortalError
from trunks.models import Membership, Role, Tenant
from trunks.reauth import reauth_is_fresh, reauth_redirect
from trunks.templatetags.money import money

from . import accounts, members, services
from .forms import ConfirmForm, MemberAddForm, MemberRoleForm, TenantForm, TenantKeyForm
from .invitations import invitation_withdraw, invitations_pending_for_tenant
from .selectors import tenant_list_administered, tenant_members_list, usernames_locked_out

INVITED = (
    "{username} is invited to join {tenant} as {role}. If an account has that username, its owner "
    "sees the invitation when they next sign in; nothing changes until they accept. To make a new "
    "account instead, tick “create this user”."
)

DETAIL = "tenants/detail.html"


def _admin_tenant(request: HttpRequest, slug: str) -> Tenant:
    tenant = tenant_get_for(user=request.user, slug=slug, min_role=Role.ADMIN)
    request.log_tenant = tenant  # named in the request's log line (portal.middleware)
    return tenant


def _detail_url(tenant: Tenant, anchor: str = "") -> str:
    url = reverse("tenants:detail", kwargs={"slug": tenant.slug})
    return f"{url}#{anchor}" if anchor else url


def _detail_context(request: HttpRequest, tenant: Tenant, **extra) -> dict:
    member_list = list(tenant_members_list(tenant=tenant))
    context = {
        "tenant": tenant,
        "members": member_list,
        "locked": usernames_locked_out(usernames=[m.user.get_username() for m in member_list]),
        "invitations": invitations_pending_for_tenant(tenant=tenant),
        "roles": Role.choices,
        "key_form": TenantKeyForm(replacing=tenant.has_api_key),
        "member_form": MemberAddForm(),
        "is_superuser": request.user.is_superuser,
        "reauth_fresh": reauth_is_fresh(request),
    }
    context.update(extra)
    return context


def _fragments(request: HttpRequest, names: list[str], context: dict) -> HttpResponse:
    """Render several partials of the detail page into one htmx response (the later ones oob)."""
    html = "".join(
        render_to_string(f"{DETAIL}#{name}", {**context, "oob": i > 0}, request=request)
        for i, name in enumerate(names)
    )
    return HttpResponse(html)


@require_http_methods(["GET"])
def tenant_list(request: HttpRequest) -> HttpResponse:
    tenants = tenant_list_administered(user=request.user).select_related("api_key_set_by")
    if not request.user.is_superuser and not tenants.exists():
        raise PermissionDenied("Only tenant admins manage tenants.")
    return render(
        request,
        "tenants/list.html",
        {"tenants": tenants, "can_create": request.user.is_superuser},
    )


@require_http_methods(["GET", "POST"])
def tenant_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_superuser:
        raise PermissionDenied("Only portal administrators create tenants.")
    form = TenantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant = services.tenant_create(
                actor=request.user, request=request, **form.cleaned_data
            )
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            messages.success(
                request, f"Tenant {tenant.name} created. Next: set its API key and add members."
            )
            return redirect(_detail_url(tenant))
    return render(request, "tenants/form.html", {"form": form, "tenant": None})


@require_http_methods(["GET"])
def tenant_detail(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _admin_tenant(request, slug)
    return render(request, DETAIL, _detail_context(request, tenant))


@require_http_methods(["GET", "POST"])
def tenant_edit(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _admin_tenant(request, slug)
    can_set_base_url = request.user.is_superuser
    form = TenantForm(
        request.POST or None,
        initial=TenantForm.initial_for(tenant),
        can_set_base_url=can_set_base_url,
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        if not can_set_base_url:
            data.pop("base_url")
        try:
            tenant = services.tenant_update(
                actor=request.user, tenant=tenant, request=request, **data
            )
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            messages.success(request, f"Tenant {tenant.name} saved.")
            return redirect(_detail_url(tenant))
    return render(request, "tenants/form.html", {"form": form, "tenant": tenant})


@require_POST
def tenant_set_active(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _admin_tenant(request, slug)
    wanted = request.POST.get("is_active")
    if wanted not in ("0", "1"):
        # Only a hand-made request gets here: say so plainly and change nothing.
        messages.error(request, "Choose whether to activate or deactivate the tenant.")
        return redirect(_detail_url(tenant))
    if wanted == "0" and request.POST.get("confirm") != "yes":
        # Deactivating is confirmed on its own page first (tenant_deactivate).
        return redirect("tenants:deactivate", slug=tenant.slug)
    tenant = services.tenant_set_active(
        actor=request.user, tenant=tenant, is_active=wanted == "1", request=request
    )
    note = f"{tenant.name} is {'active' if tenant.is_active else 'deactivated'}."
    if request.htmx:
        return _fragments(
            request, ["tenant-state"], _detail_context(request, tenant, state_note=note)
        )
    messages.success(request, note)
    return redirect(_detail_url(tenant))


@require_http_methods(["GET"])
def tenant_deactivate(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask before deactivating (the form posts to tenant_set_active with confirm=yes)."""
    tenant = _admin_tenant(request, slug)
    if not tenant.is_active:
        return redirect(_detail_url(tenant))
    return render(request, "tenants/deactivate.html", {"tenant": tenant})


@sensitive_post_parameters("api_key")
@require_http_methods(["GET", "POST"])
def tenant_key(request: HttpRequest, slug: str) -> HttpResponse:
    """Set or replace the API key (password confirmed in the last minutes). GET: the detail page."""
    tenant = _admin_tenant(request, slug)
    if request.method == "GET":
        return redirect(_detail_url(tenant, "key"))
    # After the tenant check, so another tenant's URL still answers 404.
    if not reauth_is_fresh(request):
        return reauth_redirect(request)
    form = TenantKeyForm(request.POST, replacing=tenant.has_api_key)
    note = ""
    if form.is_valid():
        replacing = tenant.has_api_key
        try:
            tenant = services.tenant_credential_set(
                actor=request.user,
                tenant=tenant,
                api_key=form.cleaned_data["api_key"],
                save_anyway=form.cleaned_data.get("save_anyway", False),
                test_first=True,
                request=request,
            )
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            done = f"API key {'replaced' if replacing else 'set'}: {tenant.api_key_masked}."
            if tenant.connection_ok:
                note = f"{done} Crazytel accepts it: {tenant.connection_message}"
            elif tenant.connection_ok is False:
                note = f"{done} Crazytel rejects it: the tenant's connection shows as failing."
            else:
                note = (
                    f"{done} Crazytel could not be asked about it now: test the connection later."
                )
            if not request.htmx:
                messages.success(request, note)
                return redirect(_detail_url(tenant))
            form = TenantKeyForm(replacing=True)
    context = _detail_context(request, tenant, key_form=form, key_note=note)
    if request.htmx:
        return _fragments(request, ["key-section", "tenant-state"], context)
    return render(request, DETAIL, context)


@require_POST
def tenant_connection_test(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _admin_tenant(request, slug)
    result = services.tenant_connection_test(actor=request.user, tenant=tenant, request=request)
    if request.htmx:
        return _fragments(
            request, ["tenant-state"], _detail_context(request, tenant, connection_result=result)
        )
    if result.ok:
        messages.success(
            request,
            f"Connection works: account {result.account_code}, balance {money(result.balance)}.",
        )
    else:
        messages.error(request, f"Connection failed: {result.message}")
    return redirect(_detail_url(tenant))


@require_POST
def member_add(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _admin_tenant(request, slug)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            added = members.member_add(
                actor=request.user,
                tenant=tenant,
                username=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
                create_user=form.cleaned_data["create_user"],
                request=request,
            )
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            if added.invitation is not None:
                note = INVITED.format(
                    username=added.invitation.username,
                    tenant=tenant.name,
                    role=added.invitation.get_role_display(),
                )
                if not request.htmx:
                    messages.success(request, note)
                    return redirect(_detail_url(tenant, "members"))
                return _fragments(
                    request,
                    ["members"],
                    _detail_context(request, tenant, member_note=note),
                )
            user = added.membership.user
            if added.user_created:
                # The password is in this one response only: never in a message, session or log.
                context = _detail_context(request, tenant, added=added)
                if request.htmx:
                    response = _fragments(request, ["members"], context)
                else:
                    response = render(request, "tenants/member_created.html", context)
                add_never_cache_headers(response)
                return response
            note = f"{user.get_username()} added as {added.membership.get_role_display()}."
            if not request.htmx:
                messages.success(request, note)
                return redirect(_detail_url(tenant, "members"))
            return _fragments(
                request, ["members"], _detail_context(request, tenant, member_note=note)
            )
    context = _detail_context(request, tenant, member_form=form)
    if request.htmx:
        return _fragments(request, ["members"], context)
    return render(request, DETAIL, context)


def _membership(tenant: Tenant, pk: int) -> Membership:
    # Scoped to the tenant: another tenant's membership id answers 404.
    return get_object_or_404(Membership.objects.select_related("user"), pk=pk, tenant=tenant)


@require_POST
def member_role(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    tenant = _admin_tenant(request, slug)
    membership = _membership(tenant, pk)
    form = MemberRoleForm(request.POST)
    error = note = ""
    if form.is_valid():
        try:
            membership = members.member_set_role(
                actor=request.user,
                tenant=tenant,
                membership_id=membership.pk,
                role=form.cleaned_data["role"],
                request=request,
            )
        except NotFound:
            raise Http404("No such member.") from None
        except PortalError as exc:
            error = exc.message
        else:
            note = f"{membership.user.get_username()} is now {membership.get_role_display()}."
    else:
        error = "Choose a role: staff, manager or admin."
    if request.htmx:
        context = _detail_context(request, tenant, member_note=note, member_error=error)
        return _fragments(request, ["members"], context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, note)
    return redirect(_detail_url(tenant, "members"))


@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    tenant = _admin_tenant(request, slug)
    membership = _membership(tenant, pk)
    form = ConfirmForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            members.member_remove(
                actor=request.user, tenant=tenant, membership_id=membership.pk, request=request
            )
        except NotFound:
            raise Http404("No such member.") from None
        except PortalError as exc:
            error = exc.message
        else:
            messages.success(
                request, f"{membership.user.get_username()} removed from {tenant.name}."
            )
            return redirect(_detail_url(tenant, "members"))
    return render(
        request,
        "tenants/member_remove.html",
        {"tenant": tenant, "membership": membership, "form": form, "error": error},
    )


@require_http_methods(["GET", "POST"])
def member_password_reset(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Ask, then give the member a new password shown once (they must replace it at next login)."""
    tenant = _admin_tenant(request, slug)
    membership = _membership(tenant, pk)
    context = {"tenant": tenant, "membership": membership, "password": "", "error": ""}
    if request.method == "POST":
        try:
            membership, context["password"] = accounts.member_password_reset(
                actor=request.user, tenant=tenant, membership_id=membership.pk, request=request
            )
        except NotFound:
            raise Http404("No such member.") from None
        except PortalError as exc:
            context["error"] = exc.message
    response = render(request, "tenants/member_password.html", context)
    # The password is in this one response only: never in a message, session, cache or log.
    add_never_cache_headers(response)
    return response


@require_POST
def member_unlock(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Clear the login throttle's failures for a member's username."""
    tenant = _admin_tenant(request, slug)
    membership = _membership(tenant, pk)
    accounts.member_unlock(
        actor=request.user, tenant=tenant, membership_id=membership.pk, request=request
    )
    note = f"{membership.user.get_username()} can sign in again (failed log-ins cleared)."
    if request.htmx:
        return _fragments(request, ["members"], _detail_context(request, tenant, member_note=note))
    messages.success(request, note)
    return redirect(_detail_url(tenant, "members"))


@require_POST
def member_invitation_withdraw(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Take back an open invitation to the tenant."""
    tenant = _admin_tenant(request, slug)
    try:
        invitation = invitation_withdraw(
            actor=request.user, tenant=tenant, invitation_id=pk, request=request
        )
    except NotFound as exc:
        note = exc.message
    else:
        note = f"The invitation of {invitation.username} is withdrawn."
    if request.htmx:
        return _fragments(request, ["members"], _detail_context(request, tenant, member_note=note))
    messages.info(request, note)
    return redirect(_detail_url(tenant, "members"))
