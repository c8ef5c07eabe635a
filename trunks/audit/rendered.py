"""The audit log's results (`audit/list.html#results`: the table, the pager, the links) rendered
once per what they show (issue 17: the log under load).

The results depend on the records the reader may see, the query string (filters, order, cursor),
the reader's scope (superuser, or their tenants as a manager), the time zone, the language and the
script prefix. The key holds all of them, with the log's version (selectors.audit_log_version:
the records sealed and the attempts pending in the reader's tenants, one statement), which changes
at the commit of every write to the log: a new attempt (pending too), its completion, a
resolution, any event. So a kept rendering is only ever served for the log as it is. The markup
holds nothing per request (no CSRF token, no nonce: those are in the page around it).

Not kept: under DEBUG; when the filters have errors (marked in the results); when filtering by
person (a deleted person's records lose their actor without a new version) or by bulk job (a row's
latest attempt is linked from the row, not the record). Dropped whenever a setting changes (tests).
"""

from collections.abc import Callable

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.urls import get_script_prefix
from django.utils import timezone, translation

from portal.forms import RenderedOnce

from .selectors import audit_log_version, audit_reader_scope

# Filters whose results can change without a new version (above): rendered afresh.
UNKEPT_FILTERS = ("actor", "job")

RESULTS = RenderedOnce()
RESULTS.SIZE = 64  # a version makes the older renderings unreachable; ~30 kB each


def _forget(**kwargs) -> None:
    RESULTS.clear()


setting_changed.connect(_forget, dispatch_uid="trunks.audit.rendered")


def audit_results_html(*, request: HttpRequest, form, render: Callable[[], str]) -> str:
    """`render()`'s markup of the results for this request, kept for the same key. The version
    is read for every page, kept or not, so every page costs the same statements (bench section
    3): the version, then the page's records unless kept."""
    user = request.user
    version = audit_log_version(user=user)
    if settings.DEBUG or form.errors or any(request.GET.get(name) for name in UNKEPT_FILTERS):
        return render()
    key = (
        get_script_prefix(),
        timezone.get_current_timezone_name(),
        translation.get_language(),
        audit_reader_scope(user=user),
        tuple((name, tuple(values)) for name, values in request.GET.lists()),
        version,
    )
    return RESULTS.get(key, render)
