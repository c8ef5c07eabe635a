"""The audit log pages: the filtered list (full page or htmx fragment), a record, and exports."""

import html
import json

from django.core.exceptions import PermissionDenied
from django.db.models.query import ValuesIterable
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_POST

from trunks.crazytel.contract import username_is_valid
from trunks.errors import Conflict, NotPermitted, PortalError
from trunks.models import AuditKind, AuditStatus
from trunks.numbers import number_national

from .chain import record_hash_compute
from .chart import chart_build
from .columns import (
    AUDIT_COLUMN_FIELDS,
    AUDIT_COLUMNS,
    EXPORT_FIELDS,
    audit_row,
    data_items,
    event_summary,
    export_row_function,
    record_number,
)
from .export import EXPORT_FORMATS, export_filename
from .filters import filter_fields_html
from .forms import AuditResolveForm
from .paging import AuditCursor, audit_order, audit_page
from .rendered import audit_results_html
from .selectors import (
    audit_chain_neighbour,
    audit_chart_counts,
    audit_filterset,
    audit_followups,
    audit_get,
    audit_tenant_choices,
    audit_with_resolution,
)
from .services import audit_unknown_resolve

CHART_DAYS = 30
EXPORT_CHUNK = 5000
PAGING_PARAMS = ("after", "before")


def _require_manager(request: HttpRequest) -> None:
    # The same (per-request) membership read as the menu, the scope and the tenant filter.
    user = request.user
    if not (user.is_authenticated and (user.is_superuser or audit_tenant_choices(user=user))):
        raise PermissionDenied("The audit log is for managers.")


def _query(params: QueryDict, **changes: str | None) -> str:
    """The query string of `params` with `changes` applied (None removes), empty values dropped."""
    query = params.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value is not None:
            query[key] = value
    for key in list(query):
        if all(v == "" for v in query.getlist(key)):
            del query[key]
    return query.urlencode()


@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """The filtered log, a page at a time. The chart is a fragment of its own (audit_chart),
    loaded by htmx once the table is on screen, so paging and filtering never wait for it. The
    results are rendered once per what they show (trunks.audit.rendered)."""
    _require_manager(request)
    filterset = audit_filterset(user=request.user, data=request.GET)
    request.log_tenant = filterset.chosen_tenant  # named in the request's log line
    results = audit_results_html(
        request=request, form=filterset.form, render=lambda: _results_render(request, filterset)
    )
    if request.htmx:
        return HttpResponse(results)
    context = {
        "form": filterset.form,
        "filter_fields": filter_fields_html(filterset.form),
        "results": results,
    }
    return render(request, "audit/list.html", context)


def _results_render(request: HttpRequest, filterset) -> str:
    """The results' markup (audit/list.html#results) from the request's query and the records,
    with no request context: nothing in it differs between requests with the same key."""
    sort = filterset.sort_order
    page = audit_page(
        _list_records(audit_with_resolution(filterset.qs)),
        sort=sort,
        after=AuditCursor.parse(request.GET.get("after")),
        before=AuditCursor.parse(request.GET.get("before")),
    )
    base_query = _query(request.GET, after=None, before=None)
    rows = _list_rows(page.records)
    context = {
        "form": filterset.form,
        "list_path": request.path,
        "rows": rows,
        "rows_html": _rows_html(rows),
        "columns": AUDIT_COLUMNS,
        "newest_first": sort != "oldest",
        "is_first_page": page.previous_cursor is None,
        "previous_query": _query(request.GET, after=None, before=str(page.previous_cursor))
        if page.previous_cursor
        else None,
        "next_query": _query(request.GET, before=None, after=str(page.next_cursor))
        if page.next_cursor
        else None,
        "first_query": base_query,
        "export_query": base_query,
        # The chart ignores paging and order: one cached chart per set of filters.
        "chart_query": _query(request.GET, after=None, before=None, sort=None),
    }
    return render_to_string("audit/list.html#results", context)


_STATUS_TEXT = {**dict(AuditStatus.choices), AuditStatus.UNKNOWN: "Unknown outcome"}
OUTCOME_CHARS = 120
# What the page reads of each record: the columns and an event's details.
LIST_FIELDS = [*AUDIT_COLUMN_FIELDS, "data"]


class ListRecord:
    """A record as the list reads it: the LIST_FIELDS, `pk` and the follow-up annotations as
    attributes, from a values() row. Building 50 model instances (deferred fields and all) was a
    third of the page query's CPU (issue 17's profile); the page reads nothing else of them."""

    def __init__(self, row: dict):
        self.__dict__ = row
        self.pk = row["id"]


class _ListRecordIterable(ValuesIterable):
    def __iter__(self):
        for row in super().__iter__():
            yield ListRecord(row)


def _list_records(queryset):
    """`queryset` (with its follow-up annotations) yielding ListRecords."""
    rows = queryset.values("id", *LIST_FIELDS, "resolution_username", "retried_as")
    rows._iterable_class = _ListRecordIterable  # values() rows, handed out as objects
    return rows


def when_text(moment) -> str:
    """ "3 Dec 2026 14:05:09 AEDT": to the second, in the portal's time zone, named."""
    return _local_when_text(timezone.localtime(moment))


def _local_when_text(local) -> str:
    return f"{local.day} {local:%b %Y %H:%M:%S} {local.tzname() or ''}".rstrip()


def _list_rows(records) -> list[tuple]:
    """(record, its columns plus what the table shows, its page's URL) for each record, worked
    out here once rather than by template filters per cell (the page shows 50)."""
    marker = 2_147_483_647
    head, tail = reverse("audit:detail", args=[marker]).split(str(marker))
    tz = timezone.get_current_timezone()  # once a page, not twice a row
    rows = []
    for record in records:
        local = record.started_at.astimezone(tz)
        row = audit_row(record, local=local)
        outcome = row["outcome"]
        row["number_text"] = record_number(record)
        row["when_text"] = _local_when_text(local)
        row["status_text"] = _STATUS_TEXT.get(record.status, record.status)
        row["description"] = row["description"] or event_summary(
            record.kind, record.data, record.trunk_username
        )
        row["outcome_short"] = (
            outcome if len(outcome) <= OUTCOME_CHARS else Truncator(outcome).chars(OUTCOME_CHARS)
        )
        rows.append((record, row, f"{head}{record.pk}{tail}"))
    return rows


def _unknown_marks(record, url: str) -> tuple[str, str]:
    """An unknown outcome's row class and badge: highlighted with a Resolve link until handled
    (resolved, or retried successfully), then what became of it."""
    if record.status != AuditStatus.UNKNOWN:
        return "", ""
    resolution = getattr(record, "resolution_username", None)
    retried_as = getattr(record, "retried_as", None)
    if resolution is not None:
        found = f"created {resolution}" if resolution else "not created"
        return " row-resolved", format_html(
            ' <span class="badge badge-resolved">Resolved</span> <span class="resolution">{}</span>',
            found,
        )
    if retried_as is not None:
        return " row-resolved", format_html(
            ' <span class="badge badge-resolved">Handled</span> '
            '<span class="resolution">retried: {} created</span>',
            retried_as or "trunk",
        )
    return " row-unknown", format_html(
        ' <a class="resolve-link" href="{}#resolution">Resolve</a>', url
    )


def _rows_html(rows: list[tuple]) -> str:
    """The table's rows as markup. Written out here rather than in the template: 50 rows of 10
    cells cost Django's template engine ~8 ms (a variable lookup per cell), and format_html's
    per-value conditional_escape ~2 ms more (issue 17's profile); this is a fraction of that.
    Every value from a record goes through `_text` (html.escape, what Django's escape uses); the
    row marks are our own markup (format_html in _unknown_marks)."""
    out = []
    for record, row, url in rows:
        row_class, badge = _unknown_marks(record, url)
        status = _text(row["status"])
        out.append(
            f'<tr class="status-{status}{row_class}"><td class="nowrap"><a href="{_text(url)}">'
            f"{_text(row['number_text'])}</a></td>"
            f'<td class="nowrap"><time datetime="{_text(row["when"])}">{_text(row["when_text"])}'
            f"</time></td><td>{_text(row['tenant'])}</td><td>{_text(row['actor'] or '—')}</td>"
            f"<td>{_text(row['kind'])}</td>"
            f'<td><span class="badge badge-{status}">{_text(row["status_text"])}</span>{badge}</td>'
            f"<td>{_text(row['trunk_username'])}</td>"
            f'<td class="nowrap">{_text(row["caller_id"])}</td><td>{_text(row["description"])}</td>'
            f"<td>{_text(row['outcome_short'])}</td></tr>"
        )
    return mark_safe("\n".join(out))  # noqa: S308 (every record value escaped by _text)


def _text(value) -> str:
    """A value from a record as HTML text: escaped exactly as Django's escape() does. Most values
    hold none of the five characters escaped, and html.escape's five passes over each of a page's
    ~650 values were a tenth of the page's CPU (issue 17's profile): such a value is returned as
    it is, which is what html.escape returns for it."""
    text = str(value)
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return html.escape(text)
    return text


@require_GET
def audit_chart(request: HttpRequest) -> HttpResponse:
    """Trunk attempts per day by status for the 30 days ending on the filter's end date (or
    today), honouring the other filters: the fragment the list loads, or a page of its own."""
    _require_manager(request)
    filterset = audit_filterset(user=request.user, data=request.GET)
    request.log_tenant = filterset.chosen_tenant  # named in the request's log line
    last_day = filterset.cleaned("date_to") or timezone.localdate()
    counts = audit_chart_counts(
        user=request.user, filterset=filterset, days=CHART_DAYS, last_day=last_day
    )
    list_url = reverse("audit:list")

    def day_link(day) -> str:
        day_text = day.isoformat()
        return f"{list_url}?{_query(request.GET, date_from=day_text, date_to=day_text)}"

    context = {
        "chart": chart_build(counts, day_link=day_link),
        "form": filterset.form,
        "list_query": _query(request.GET),
    }
    template = "audit/chart.html#chart" if request.htmx else "audit/chart.html"
    return render(request, template, context)


@require_GET
def audit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    return _detail_render(request, audit_get(user=request.user, pk=pk))


def _detail_render(
    request: HttpRequest,
    record,
    *,
    resolve_form: AuditResolveForm | None = None,
    status: int = 200,
    partial: bool = False,
) -> HttpResponse:
    followups = audit_followups(record=record)
    if resolve_form is None and record.status == AuditStatus.UNKNOWN:
        resolve_form = AuditResolveForm()
    previous = audit_chain_neighbour(record=record)
    sealed = bool(record.record_hash)
    context = {
        "record": record,
        "row": audit_row(record),
        "number": record_number(record),
        "summary": event_summary(record.kind, record.data, record.trunk_username),
        "started_text": when_text(record.started_at),
        "finished_text": when_text(record.finished_at) if record.finished_at else "",
        "data_items": list(data_items(record.data)),
        "response_json": json.dumps(record.response, indent=2, ensure_ascii=False, sort_keys=True)
        if record.response is not None
        else "",
        "caller_id": number_national(record.caller_id_number),
        # The trunk's own page (it answers 404 when the portal holds no record of it).
        "trunk_url": reverse("trunks:detail", args=[record.trunk_username])
        if username_is_valid(record.trunk_username)
        else "",
        "followups": followups,
        "resolution": next((f for f in followups if f.kind == AuditKind.OUTCOME_RESOLVED), None),
        "retried": next(
            (
                f
                for f in followups
                if f.kind == AuditKind.TRUNK_CREATE and f.status == AuditStatus.SUCCEEDED
            ),
            None,
        ),
        "resolve_form": resolve_form,
        "related_label": _related_label(record),
        "chain_previous": previous,
        "hash_ok": sealed and record_hash_compute(record) == record.record_hash,
        "link_ok": sealed
        and (
            (record.chain_seq == 1 and record.prev_hash == "")
            or (previous is not None and previous.record_hash == record.prev_hash)
        ),
        "unknown": AuditStatus.UNKNOWN,
    }
    template = "audit/detail.html#resolution" if partial else "audit/detail.html"
    return render(request, template, context, status=status)


@require_POST
def audit_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """Resolve an unknown outcome (trunks.audit.services.audit_unknown_resolve): a new event, never an
    edit. Another tenant's record is a 404; a second resolution is refused with the first one's
    details."""
    _require_manager(request)
    record = audit_get(user=request.user, pk=pk)
    form = AuditResolveForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            audit_unknown_resolve(
                actor=request.user,
                record=record,
                created=form.cleaned_data["outcome"] == "created",
                username=form.cleaned_data["username"],
                note=form.cleaned_data["note"],
                request=request,
                trunk_id=form.cleaned_data.get("trunk_id"),
            )
        except NotPermitted:
            raise Http404("No such audit record.") from None
        except PortalError as error:
            form.add_portal_error(error)
            # A plain POST says what went wrong in its status; htmx swaps only a 200.
            status = 409 if isinstance(error, Conflict) and not request.htmx else status
        else:
            if not request.htmx:
                return redirect("audit:detail", pk=record.pk)
            form = None
    return _detail_render(
        request, record, resolve_form=form, status=status, partial=bool(request.htmx)
    )


def _related_label(record) -> str:
    if record.related_id is None:
        return ""
    if record.kind == AuditKind.OUTCOME_RESOLVED:
        return "Resolution of"
    if record.kind == AuditKind.TRUNK_CREATE:
        return "Retry of"
    return "Refers to"


@require_GET
def audit_export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """Exactly the filtered records, streamed in constant memory, in the page's columns and order."""
    _require_manager(request)
    content_type, stream = EXPORT_FORMATS[fmt]
    filterset = audit_filterset(user=request.user, data=request.GET)
    request.log_tenant = filterset.chosen_tenant  # named in the request's log line
    if not filterset.form.is_valid():
        # Never export a wider set than the person asked for.
        problems = "; ".join(
            f"{filterset.form.fields[name].label if name in filterset.form.fields else name}: "
            f"{' '.join(errors)}"
            for name, errors in filterset.form.errors.items()
        )
        return HttpResponse(
            f"Nothing exported: the filters are not valid ({problems}). Fix them on the audit "
            "log page and export again.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    values = (
        audit_order(filterset.qs, sort=filterset.sort_order)
        .values_list(*EXPORT_FIELDS)
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    response = StreamingHttpResponse(
        stream(map(export_row_function(), values)), content_type=content_type
    )
    filename = export_filename(
        tenant=filterset.chosen_tenant,
        date_from=filterset.cleaned("date_from"),
        date_to=filterset.cleaned("date_to"),
        ext=fmt,
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
