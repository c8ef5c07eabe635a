"""Creating SIP trunks: the form at /trunks/new/, its htmx partials, and every outcome shown.

Thin: pick the tenant, let the form check the submission (fields, token, numbers, retry), call
trunks.provisioning.services, render the whole page or (for htmx) one partial of
templates/trunks/trunk_form.html. Every response is `no-store`: forms carry one-time tokens and a
success page carries the trunk's password, shown once and never stored anywhere.
"""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from portal.csrf import csrf_token_masked
from portal.fixed_urls import fixed_url_with
from trunks.access import (
    tenant_list_for,
    user_tenant_access,
    user_tenants_at_least,
    user_tenants_loaded,
)
from trunks.crazytel.contract import TRUNK_FIELDS
from trunks.models import AuditRecord, Role, Tenant
from trunks.numbers import number_national

from .forms import TrunkCreateForm
from .messages import TrunkError
from .numbers import verified_numbers_get
from .passwords import password_rules_json, trunk_password_generate
from .rendered import trunk_form_fragment, trunk_result_fragment
from .selectors import (
    trunk_attempt_for_submission,
    trunk_attempt_get_for,
    trunk_attempts_unknown_recent,
)
from .services import TrunkCreateResult, trunk_attempt_result, trunk_create
from .tokens import submission_token_issue

SESSION_TENANT_KEY = "trunks.create.tenant"
TEMPLATE = "trunks/trunk_form.html"


def _tenant_choose(request: HttpRequest, tenants: list[Tenant], slug: str | None) -> Tenant | None:
    """The tenant the person chose: the one asked for (404 if not theirs), else the one they chose
    before (remembered in the session), else their only one. None when they have several and have
    not chosen: the form asks rather than picking one by sort order (a tenant that sorts first,
    joined or not by the person's choice, must never receive their trunk silently)."""
    by_slug = {t.slug: t for t in tenants}
    if slug:
        tenant = by_slug.get(slug)
        if tenant is None:
            raise Http404("No such tenant.")
    elif len(tenants) == 1:
        tenant = tenants[0]
    else:
        tenant = by_slug.get(request.session.get(SESSION_TENANT_KEY, ""))
        if tenant is None:
            return None
    if request.session.get(SESSION_TENANT_KEY) != tenant.slug:
        request.session[SESSION_TENANT_KEY] = tenant.slug
    request.log_tenant = tenant  # named in the request's log line (portal.middleware)
    return tenant


def _audit_links(request: HttpRequest, record: AuditRecord | None) -> dict[str, str]:
    """Where to read the attempt's record: the audit log for its tenant's managers and admins, and
    always the attempt's own page for the person who made it."""
    if record is None:
        return {"audit_url": "", "attempt_url": ""}
    managed = {a.id for a in user_tenants_at_least(user=request.user, min_role=Role.MANAGER)}
    audit_url = fixed_url_with("audit:detail", record.pk) if record.tenant_id in managed else ""
    return {"audit_url": audit_url, "attempt_url": fixed_url_with("trunks:attempt", record.uuid)}


def trunk_settings_shown(data: dict) -> list[tuple[str, str]]:
    """The settings sent to Crazytel as the success page lists them (label, text), from the spec."""
    shown = []
    for spec in TRUNK_FIELDS:
        if spec.secret:
            continue
        value = data.get(spec.name)
        if spec.type is bool:
            text = "—" if value is None else "Yes" if value else "No"
        elif value in (None, ""):
            text = spec.empty_text
        else:
            text = number_national(value) if spec.number else str(value)
        shown.append((spec.label, text))
    return shown


def _sip_registration() -> dict[str, str]:
    """Where a phone or PBX registers the new trunk (settings: not in Crazytel's API)."""
    return {
        "registrar": settings.CRAZYTEL_SIP_REGISTRAR,
        "port": str(settings.CRAZYTEL_SIP_PORT or ""),
        "transport": settings.CRAZYTEL_SIP_TRANSPORT,
    }


def _choose_first(request: HttpRequest, tenants: list[Tenant], message: str = "") -> HttpResponse:
    """The page asking which tenant the trunk is for (several tenants, none chosen yet)."""
    return _render(request, {"tenants": tenants, "tenant": None, "choose_message": message})


def _render(request: HttpRequest, context: dict, *, partial: str = "trunk-create") -> HttpResponse:
    """The page or one partial. Everything the template shows is worked out here, so rendering
    runs no queries."""
    tenant = context["tenant"]
    for name in ("numbers", "result", "form", "retry_of"):
        context.setdefault(name, None)
    context.setdefault("unavailable", "")
    context.setdefault("tenants", [tenant])
    result = context["result"]
    context.update(
        password_rules=password_rules_json(),
        sip=_sip_registration(),
        settings_shown=trunk_settings_shown(result.settings) if result else [],
        **_audit_links(request, result.record if result else None),
    )
    if context["form"] is not None and tenant is not None:
        if context.get("next_token") is None:
            context["next_token"] = submission_token_issue(user=request.user)
        context["unknown_recent"] = [
            r
            for r in trunk_attempts_unknown_recent(tenant=tenant)
            if result is None or r.pk != result.record.pk
        ]
        if (
            context.get("form_unbound")
            and result is None
            and context["retry_of"] is None
            and not request.htmx
        ):
            # The fragment rendered once for what it shows, this request's tokens spliced in. The
            # page's other CSRF tokens are this one: a view's context wins over the processors'.
            context["csrf_token"] = csrf_token_masked(request)
            context["trunk_create_html"] = trunk_form_fragment(
                tenant=tenant,
                numbers=context["numbers"],
                unknown_recent=context["unknown_recent"],
                csrf_token=context["csrf_token"],
                next_token=context["next_token"],
            )
    elif (
        partial == "trunk-create"
        and result is not None
        and tenant is not None
        and not context["unavailable"]
    ):
        # The result panel (a success, or an earlier submission still pending) rendered once for
        # what it shows, this result's values spliced in.
        context["trunk_create_html"] = trunk_result_fragment(
            result=result,
            settings_shown=context["settings_shown"],
            sip=context["sip"],
            audit_url=context["audit_url"],
            attempt_url=context["attempt_url"],
        )
    if request.htmx:
        template = f"{TEMPLATE}#{partial}"
    else:
        template = TEMPLATE
        # The page's menu reads the user's tenants and roles: read them now (once per request).
        user_tenant_access(user=request.user)
    # Rendered after the view returns, so a test can watch the rendering alone (no queries).
    return TemplateResponse(request, template, context)


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def trunk_create_view(request: HttpRequest) -> HttpResponse:
    # The tenants and the menu's roles in one query.
    tenants = user_tenants_loaded(user=request.user)
    if not tenants:
        # A portal administrator before any tenant exists is welcome here; anyone else is not.
        status = 200 if request.user.is_superuser else 403
        return render(request, "trunks/no_tenant.html", status=status)
    if request.method == "POST":
        return _trunk_create_post(request, tenants)

    tenant = _tenant_choose(request, tenants, request.GET.get("tenant"))
    if tenant is None:
        return _choose_first(request, tenants)
    readiness = tenant.readiness
    context = {"tenants": tenants, "tenant": tenant, "unavailable": readiness.reason}
    if readiness:
        numbers = verified_numbers_get(tenant=tenant, refresh=request.GET.get("refresh") == "1")
        # Built only if rendered: an unbound form's fragment is usually rendered already
        # (trunks.provisioning.rendered).
        form = SimpleLazyObject(lambda: TrunkCreateForm(numbers=numbers))
        context.update(numbers=numbers, form=form, form_unbound=True)
    return _render(request, context)


@sensitive_variables("form")
def _trunk_create_post(request: HttpRequest, tenants: list[Tenant]) -> HttpResponse:
    tenant = _tenant_choose(request, tenants, request.POST.get("tenant"))
    context: dict = {"tenants": tenants, "tenant": tenant}
    token = request.POST.get("submission_token", "")

    def earlier_shown() -> HttpResponse | None:
        """A second POST of one rendering (double click, back button, a retried request): what
        the first one did; Crazytel is never called again. Looked up only on the paths that stop
        before trunk_create: a valid submission goes straight to it, where the token's unique
        constraint finds an earlier attempt without a query of its own."""
        earlier = trunk_attempt_for_submission(user=request.user, token=token)
        if earlier is None:
            return None
        return _render_duplicate(
            request, tenants, trunk_attempt_result(record=earlier, duplicate=True)
        )

    if tenant is None:
        # Several tenants and none named: nothing is sent until the person says which.
        return earlier_shown() or _choose_first(
            request, tenants, "Choose the tenant first: nothing was sent to Crazytel."
        )

    readiness = tenant.readiness
    if not readiness:
        return earlier_shown() or _render(request, {**context, "unavailable": readiness.reason})

    numbers = verified_numbers_get(tenant=tenant)
    form = TrunkCreateForm(request.POST, numbers=numbers, user=request.user, tenant=tenant)
    context.update(numbers=numbers, form=form, retry_of=request.POST.get("retry_of") or None)
    if not form.is_valid():
        shown = earlier_shown()
        if shown is not None:
            return shown
        if form.retry_of_refused:
            context["retry_of"] = None
        # Nothing was recorded under a valid token, so this rendering may be submitted again.
        if form.submission_nonce is not None:
            context["next_token"] = token
        return _render(request, context)

    try:
        result = trunk_create(
            actor=request.user,
            tenant=tenant,
            data=form.upstream_data(),
            request=request,
            submission_token=form.submission_nonce,
            retry_of=form.retry_of_record,
        )
    except TrunkError as error:
        return _render(request, {**context, "form": None, "unavailable": error.message})
    if result.duplicate:
        return _render_duplicate(request, tenants, result)
    return _render_result(request, context, result)


def _render_duplicate(
    request: HttpRequest, tenants: list[Tenant], result: TrunkCreateResult
) -> HttpResponse:
    """An earlier submission of the same rendering (found by its token), shown on its tenant."""
    return _render_result(request, {"tenants": tenants, "tenant": result.record.tenant}, result)


def _render_result(request: HttpRequest, context: dict, result: TrunkCreateResult) -> HttpResponse:
    """Success or a pending earlier submission: the result panel. Otherwise the form again, with
    the outcome on it and a fresh token (the old one is spent on the recorded attempt)."""
    context["result"] = result
    if result.succeeded or result.pending:
        context["form"] = None
        return _render(request, context)
    tenant = context["tenant"]
    form = context.get("form")
    if form is None:
        readiness = tenant.readiness
        if not readiness:
            return _render(request, {**context, "unavailable": readiness.reason})
        numbers = context["numbers"] = verified_numbers_get(tenant=tenant)
        form = context["form"] = TrunkCreateForm(request.POST, numbers=numbers)
        form.is_valid()
    for field_name, messages in result.field_errors.items():
        target = field_name if field_name in TrunkCreateForm.UPSTREAM_FIELDS else None
        for message in messages:
            form.add_error(target, message)
    context["retry_of"] = result.record.uuid if result.unknown else None
    return _render(request, context)


@never_cache
@require_GET
def trunk_numbers_view(request: HttpRequest) -> HttpResponse:
    """The number selects for the chosen tenant (htmx partial): tenant change and Refresh."""
    tenants = user_tenants_loaded(user=request.user)
    if not tenants:
        raise Http404("No tenant.")
    if not request.htmx:
        return redirect(reverse("trunks:create") + "?" + request.GET.urlencode())
    tenant = _tenant_choose(request, tenants, request.GET.get("tenant"))
    if tenant is None:
        raise Http404("Choose a tenant.")
    readiness = tenant.readiness
    numbers = None
    if readiness:
        numbers = verified_numbers_get(tenant=tenant, refresh=request.GET.get("refresh") == "1")
    form = TrunkCreateForm(
        numbers=numbers,
        initial={
            "caller_id_number": request.GET.get("caller_id_number", ""),
            "sms_sender": request.GET.get("sms_sender", ""),
        },
    )
    context = {
        "tenants": tenants,
        "tenant": tenant,
        "unavailable": readiness.reason,
        "numbers": numbers,
        "form": form,
        "oob": True,
    }
    return _render(request, context, partial="numbers-response")


@never_cache
@require_GET
def trunk_attempt_view(request: HttpRequest, uuid) -> HttpResponse:
    """One of the user's own attempts: how it ended (a pending one polls itself until final)."""
    record = trunk_attempt_get_for(user=request.user, uuid=uuid)
    if record is None:
        raise Http404("No such attempt.")
    context = {
        "tenant": record.tenant,
        "result": trunk_attempt_result(record=record, duplicate=False),
        # This is the attempt's own page: it does not link to itself.
        "on_attempt_page": True,
    }
    return _render(request, context, partial="result")


@never_cache
@require_GET
@sensitive_variables("password")
def trunk_password_view(request: HttpRequest) -> HttpResponse:
    """A freshly generated trunk password for the Generate button (never stored or logged)."""
    if not tenant_list_for(user=request.user).exists():
        raise Http404("No tenant.")
    password = trunk_password_generate()
    return JsonResponse({"password": password})
