"""The trunks the portal made: the list at /trunks/, a trunk's page at /trunks/<username>/ and its
actions (suspend/enable, password, settings, send again, resolve). Thin: the forms check, the
services act (trunks.lifecycle.services), this module picks what to render. Every response is
`no-store`: forms carry one-time tokens and a password change's answer carries the password."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from trunks.access import trunk_may_change, user_tenant_access, user_tenants_at_least
from trunks.crazytel.contract import TRUNK_FIELD, TRUNK_FIELDS
from trunks.errors import NotPermitted, PortalError
from trunks.models import Membership, Role, Trunk, TrunkState
from trunks.numbers import number_national
from trunks.provisioning.messages import TrunkError
from trunks.provisioning.numbers import verified_numbers_get
from trunks.provisioning.passwords import password_rules_json
from trunks.provisioning.tokens import submission_token_issue

from .forms import (
    TrunkEnabledForm,
    TrunkFilterForm,
    TrunkPasswordForm,
    TrunkResolveForm,
    TrunkSendAgainForm,
    TrunkSettingsForm,
)
from .records import trunk_settings
from .selectors import trunk_filter, trunk_get_for, trunk_history, trunk_page, trunk_scope
from .services import PASSWORD_CHANGED, TrunkChangeResult, trunk_change, trunk_change_resolve

LIST_TEMPLATE = "trunks/trunk_list.html"
DETAIL_TEMPLATE = "trunks/trunk_detail.html"


def _shown(name: str, value) -> str:
    spec = TRUNK_FIELD[name]
    if spec.type is bool:
        return "—" if value is None else "Yes" if value else "No"
    if value in (None, ""):
        return spec.empty_text
    return number_national(value) if spec.number else str(value)


def settings_rows(settings: dict, requested: dict | None = None) -> list[dict]:
    """(label, value shown, requested value shown or "") per non-secret field, in the spec's order."""
    rows = []
    for spec in TRUNK_FIELDS:
        if spec.secret:
            continue
        wanted = (requested or {}).get(spec.name, None)
        rows.append(
            {
                "label": spec.label,
                "value": _shown(spec.name, settings.get(spec.name)),
                "requested": _shown(spec.name, wanted)
                if requested and spec.name in requested
                else "",
            }
        )
    return rows


@never_cache
@require_GET
def trunk_list(request: HttpRequest) -> HttpResponse:
    tenants = user_tenant_access(user=request.user)
    if not tenants and not request.user.is_superuser:
        raise Http404("No tenant.")
    creators = (
        Membership.objects.filter(tenant_id__in=[t.id for t in tenants])
        .order_by("user__username")
        .values_list("user_id", "user__username")
        .distinct()
    )
    form = TrunkFilterForm(request.GET or None, tenants=tenants, creators=creators)
    queryset = trunk_scope(user=request.user)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        queryset = trunk_filter(
            queryset,
            q=data["q"],
            state=data["state"],
            creator=data["creator"],
            tenant=data["tenant"],
        )
    page = trunk_page(queryset, after=request.GET.get("after"))
    query = request.GET.copy()
    query.pop("after", None)
    context = {
        "form": form,
        "page": page,
        "rows": page.trunks,
        "rows_html": _rows_html(page.trunks),
        "query": query.urlencode(),
        "is_first_page": not request.GET.get("after"),
    }
    template = f"{LIST_TEMPLATE}#results" if request.htmx else LIST_TEMPLATE
    return render(request, template, context)


def _state_badges(trunk: Trunk) -> str:
    kind, text = ("ok", "enabled") if trunk.enabled else ("error", "suspended")
    badges = format_html('<span class="badge badge-{}">{}</span>', kind, text)
    if not trunk.needs_attention:
        return badges
    attention = "no Crazytel id" if not trunk.trunk_id else trunk.get_state_display().lower()
    return format_html('{} <span class="badge badge-unknown">{}</span>', badges, attention)


def _rows_html(trunks: list[Trunk]) -> str:
    """The table's rows as markup, written out here rather than by the template engine, which
    costs a variable lookup per cell (as the audit log's rows: ~20 ms of CPU for 50 rows there,
    ~2 ms here). format_html_join escapes every value."""
    marker = "CT000000"
    head, tail = reverse("trunks:detail", args=[marker]).split(marker)
    return format_html_join(
        "\n",
        '<tr><td><a href="{}{}{}"><code>{}</code></a></td><td data-label="Tenant">{}</td>'
        '<td class="nowrap" data-label="Caller ID">{}</td><td data-label="Description">{}</td>'
        '<td data-label="State">{}</td><td data-label="Created by">{}</td>'
        '<td class="nowrap" data-label="Created">{}</td></tr>',
        (
            (
                head,
                t.username,
                tail,
                t.username,
                t.tenant.name,
                number_national(t.caller_id_number),
                t.description or "—",
                _state_badges(t),
                t.created_by_username or "—",
                f"{local.day} {local:%b %Y %H:%M}",
            )
            for t in trunks
            for local in [timezone.localtime(t.created_at)]
        ),
    )


def _trunk_or_404(request: HttpRequest, username: str) -> Trunk:
    trunk = trunk_get_for(user=request.user, username=username)
    if trunk is None:
        raise Http404("No such trunk.")
    return trunk


def _forms(request: HttpRequest, trunk: Trunk, bound: dict) -> dict:
    """The change forms for a rendering: each with a fresh token and the trunk's version (or the
    bound one submitted, shown again with its errors)."""
    initial = trunk_settings(trunk) | {"version": trunk.version}
    forms = {}
    numbers = None
    for key, cls in (
        ("enabled_form", TrunkEnabledForm),
        ("password_form", TrunkPasswordForm),
        ("settings_form", TrunkSettingsForm),
        ("send_again_form", TrunkSendAgainForm),
    ):
        if key in bound:
            forms[key] = bound[key]
            continue
        kwargs = {}
        if cls is TrunkSettingsForm:
            numbers = numbers or verified_numbers_get(tenant=trunk.tenant)
            kwargs["numbers"] = numbers
        forms[key] = cls(
            initial=initial | {"submission_token": submission_token_issue(user=request.user)},
            **kwargs,
        )
    if numbers is None and "settings_form" in bound:
        numbers = bound["settings_form"].verified
    forms["numbers"] = numbers
    return forms


def _render_detail(
    request: HttpRequest,
    trunk: Trunk,
    *,
    result: TrunkChangeResult | None = None,
    bound: dict | None = None,
    refused: str = "",
    status: int = 200,
) -> HttpResponse:
    may_change = trunk_may_change(user=request.user, trunk=trunk)
    managed = {a.id for a in user_tenants_at_least(user=request.user, min_role=Role.MANAGER)}
    is_manager = request.user.is_superuser or trunk.tenant_id in managed
    requested = (trunk.requested or {}) if trunk.state == TrunkState.UNCONFIRMED else {}
    history = trunk_history(trunk=trunk)
    context = {
        "trunk": trunk,
        "result": result,
        "refused": refused,
        "may_change": may_change,
        "is_manager": is_manager,
        "changeable": trunk.changeable and trunk.tenant.readiness.ready,
        "unavailable": trunk.tenant.readiness.reason,
        "rows": settings_rows(trunk_settings(trunk), requested.get("settings")),
        "requested": requested,
        "unconfirmed": trunk.state == TrunkState.UNCONFIRMED,
        "missing": trunk.state == TrunkState.MISSING,
        "history": [
            {
                "record": r,
                "url": reverse("audit:detail", args=[r.pk]) if is_manager else "",
                "changes": [
                    (
                        TRUNK_FIELD[k].label if k in TRUNK_FIELD else k,
                        _diff_side(k, v[0]),
                        _diff_side(k, v[1]),
                    )
                    for k, v in (r.data.get("changes") or {}).items()
                    if isinstance(v, list) and len(v) == 2
                ]
                if isinstance(r.data, dict)
                else [],
                "password": isinstance(r.data, dict) and r.data.get(PASSWORD_CHANGED) is True,
            }
            for r in history
        ],
        "password_rules": password_rules_json(),
        "resolve_form": (bound or {}).get("resolve_form") or TrunkResolveForm(),
    }
    if may_change and context["changeable"]:
        context.update(_forms(request, trunk, bound or {}))
    response = render(request, DETAIL_TEMPLATE, context, status=status)
    return response


def _diff_side(name: str, value) -> str:
    if name == "password":
        return "—" if value is None else str(value)
    if name not in TRUNK_FIELD:
        return "—" if value in (None, "") else str(value)
    return _shown(name, value)


@never_cache
@require_GET
def trunk_detail(request: HttpRequest, username: str) -> HttpResponse:
    return _render_detail(request, _trunk_or_404(request, username))


ACTIONS = {
    "enabled": ("enabled_form", TrunkEnabledForm),
    "password": ("password_form", TrunkPasswordForm),
    "settings": ("settings_form", TrunkSettingsForm),
    "send-again": ("send_again_form", TrunkSendAgainForm),
}


@sensitive_post_parameters("password")
@never_cache
@require_POST
@sensitive_variables("form", "result")
def trunk_action(request: HttpRequest, username: str, action: str) -> HttpResponse:
    """One change to a trunk: suspend/enable, password, settings or send again."""
    trunk = _trunk_or_404(request, username)
    if action not in ACTIONS:
        raise Http404("No such action.")
    if not trunk_may_change(user=request.user, trunk=trunk):
        return _render_detail(
            request,
            trunk,
            refused="Only the person who created this trunk, and its tenant's managers and "
            "admins, may change it. Nothing was sent.",
            status=403,
        )
    key, cls = ACTIONS[action]
    kwargs = {"user": request.user, "tenant": trunk.tenant}
    if cls is TrunkSettingsForm:
        kwargs["numbers"] = verified_numbers_get(tenant=trunk.tenant)
    form = cls(request.POST, **kwargs)
    if not form.is_valid():
        return _render_detail(request, trunk, bound={key: form}, status=400)
    send_again = action == "send-again" or (
        action == "password" and form.cleaned_data.get("send_again")
    )
    try:
        result = trunk_change(
            actor=request.user,
            trunk=trunk,
            wanted=form.upstream_data(),
            version=form.cleaned_data["version"],
            submission_token=form.submission_nonce,
            request=request,
            send_again=send_again,
        )
    except NotPermitted:
        raise Http404("No such trunk.") from None
    except TrunkError as error:
        return _render_detail(request, trunk, refused=error.message, status=409)
    bound = {}
    if result.field_errors or result.conflict:
        # The submitted values again (never the password) to review, with a fresh token (the
        # old one is spent on the recorded attempt) and the trunk's current version.
        data = request.POST.copy()
        data["version"] = str(result.trunk.version)
        data["submission_token"] = submission_token_issue(user=request.user)
        data.pop("password", None)
        form = cls(data, **kwargs)
        form.is_valid()
        for name, messages in result.field_errors.items():
            for message in messages:
                form.add_error(name if name in form.fields else None, message)
        bound[key] = form
    response = _render_detail(request, result.trunk, result=result, bound=bound)
    return response


@never_cache
@require_POST
def trunk_resolve(request: HttpRequest, username: str) -> HttpResponse:
    """A manager records whether an unconfirmed change was applied."""
    trunk = _trunk_or_404(request, username)
    form = TrunkResolveForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, trunk, bound={"resolve_form": form}, status=400)
    try:
        trunk_change_resolve(
            actor=request.user,
            trunk=trunk,
            applied=form.cleaned_data["outcome"] == "applied",
            note=form.cleaned_data["note"],
            request=request,
        )
    except PortalError as error:
        return _render_detail(request, trunk, refused=error.message, status=409)
    return redirect("trunks:detail", username=trunk.username)
