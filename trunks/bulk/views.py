"""Bulk provisioning pages: upload and check (/trunks/bulk/), the template, a job's page with its live
progress (htmx polling that stops when the job ends), confirm, cancel, resume, the one download.

Thin: access from trunks.access, checks from .checks, every change through .services. Every response
is `no-store`; no page ever holds a password."""

from datetime import timedelta

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from trunks.access import tenant_list_for, user_tenants_at_least
from trunks.models import BulkJob, BulkJobStatus, Role
from trunks.provisioning.numbers import verified_numbers_get

from .checks import MAX_BYTES, MAX_ROWS, bulk_file_check, bulk_template_csv
from .services import (
    BulkError,
    bulk_job_cancel,
    bulk_job_confirm,
    bulk_job_counts,
    bulk_job_create,
    bulk_job_resume,
    bulk_results_download,
)

TEMPLATE = "trunks/bulk.html"
JOB_TEMPLATE = "trunks/bulk_job.html"


def _jobs_visible(user):
    """The person's own jobs, and every job of the tenants they manage."""
    from django.db.models import Q

    managed = [a.id for a in user_tenants_at_least(user=user, min_role=Role.MANAGER)]
    return BulkJob.objects.filter(Q(owner=user) | Q(tenant_id__in=managed)).select_related(
        "tenant", "owner"
    )


def _job_get(request: HttpRequest, uuid) -> BulkJob:
    job = _jobs_visible(request.user).filter(uuid=uuid).first()
    if job is None:
        raise Http404("No such bulk job.")
    return job


@sensitive_post_parameters("rows")
@sensitive_variables("raw")
@never_cache
@require_http_methods(["GET", "POST"])
def bulk_upload_view(request: HttpRequest) -> HttpResponse:
    tenants = list(tenant_list_for(user=request.user))
    if not tenants:
        return render(request, "trunks/no_tenant.html", status=403)
    context = {
        "tenants": tenants,
        "tenant": tenants[0],
        "max_rows": MAX_ROWS,
        "max_mb": MAX_BYTES // (1024 * 1024),
        "jobs": _jobs_visible(request.user).order_by("-created_at")[:50],
        "checked": None,
        "error": "",
    }
    if request.method == "GET":
        return render(request, TEMPLATE, context)
    by_slug = {t.slug: t for t in tenants}
    tenant = by_slug.get(request.POST.get("tenant", tenants[0].slug))
    if tenant is None:
        raise Http404("No such tenant.")
    context["tenant"] = tenant
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size > MAX_BYTES:
            context["error"] = (
                f"The file is {upload.size:,} bytes; the limit is 1 MB ({MAX_BYTES:,})."
            )
            return render(request, TEMPLATE, context, status=400)
        raw, name = upload.read(), upload.name
    else:
        raw, name = request.POST.get("rows", "").encode(), "pasted rows"
    if not raw.strip():
        context["error"] = "Choose a CSV file or paste rows (with the header row) first."
        return render(request, TEMPLATE, context, status=400)
    readiness = tenant.readiness
    if not readiness:
        context["error"] = readiness.reason
        return render(request, TEMPLATE, context, status=400)
    numbers = verified_numbers_get(tenant=tenant)
    if not numbers.ok:
        context["error"] = "The numbers could not be checked against Crazytel. " + numbers.error
        return render(request, TEMPLATE, context, status=400)
    checked = bulk_file_check(raw=raw, name=name, numbers=numbers)
    if not checked.ok:
        context["checked"] = checked
        return render(request, TEMPLATE, context, status=400)
    job = bulk_job_create(actor=request.user, tenant=tenant, checked=checked)
    return redirect("trunks:bulk-job", uuid=job.uuid)


@require_GET
def bulk_template_view(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(bulk_template_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="crazytel-trunks-template.csv"'
    return response


def _progress(job: BulkJob) -> dict:
    counts = bulk_job_counts(job)
    done = counts["created"] + counts["failed"] + counts["unknown"] + counts["cancelled"]
    left = counts["ready"] + counts["claimed"]
    eta = None
    if job.started_at and not job.ended and done and left:
        elapsed = (timezone.now() - job.started_at).total_seconds()
        eta = timezone.now() + timedelta(seconds=elapsed / done * left)
    percent = round(100 * done / job.row_count) if job.row_count else 100
    return {"counts": counts, "done": done, "left": left, "eta": eta, "percent": percent}


@never_cache
@require_GET
def bulk_job_view(request: HttpRequest, uuid) -> HttpResponse:
    job = _job_get(request, uuid)
    context = {
        "job": job,
        "rows": job.rows.order_by("index"),
        "is_owner": job.owner_id == request.user.pk,
        "is_manager": job.tenant_id
        in {a.id for a in user_tenants_at_least(user=request.user, min_role=Role.MANAGER)},
        "draft": job.status == BulkJobStatus.DRAFT,
        **_progress(job),
    }
    if request.htmx:
        response = render(request, f"{JOB_TEMPLATE}#progress", context)
        if job.ended or job.status == BulkJobStatus.PAUSED:
            stop = HttpResponseStopPolling(response.content)
            return stop
        return response
    return render(request, JOB_TEMPLATE, context)


def _owner_action(request: HttpRequest, uuid) -> BulkJob:
    job = _job_get(request, uuid)
    managed = {a.id for a in user_tenants_at_least(user=request.user, min_role=Role.MANAGER)}
    if job.owner_id != request.user.pk and job.tenant_id not in managed:
        raise Http404("No such bulk job.")
    return job


@require_POST
def bulk_job_confirm_view(request: HttpRequest, uuid) -> HttpResponse:
    job = _job_get(request, uuid)
    if job.owner_id != request.user.pk:
        raise Http404("No such bulk job.")
    bulk_job_confirm(actor=request.user, job=job, request=request)
    return redirect("trunks:bulk-job", uuid=job.uuid)


@require_POST
def bulk_job_cancel_view(request: HttpRequest, uuid) -> HttpResponse:
    bulk_job_cancel(job=_owner_action(request, uuid))
    return redirect("trunks:bulk-job", uuid=uuid)


@require_POST
def bulk_job_resume_view(request: HttpRequest, uuid) -> HttpResponse:
    bulk_job_resume(job=_owner_action(request, uuid))
    return redirect("trunks:bulk-job", uuid=uuid)


@never_cache
@require_POST
def bulk_job_download_view(request: HttpRequest, uuid) -> HttpResponse:
    job = _job_get(request, uuid)
    try:
        body = bulk_results_download(actor=request.user, job=job)
    except BulkError as error:
        context = {"job": job, "error": error.message}
        return render(request, "trunks/bulk_refused.html", context, status=409)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="trunks-{job.uuid}.csv"'
    return response
