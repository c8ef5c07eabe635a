"""The bench process's URLconf: the portal's own URLs, plus the references figures are compared to.

- `/__bench__/base/`: a bare Django view rendering the base template (the floor for any page).
- `/__bench__/admin/`: a plain Django admin changelist of the audit table, used only when the
  portal's admin does not register AuditRecord itself (then it is what users would reach for).
"""

from django.contrib import admin
from django.shortcuts import render
from django.urls import path

from portal.urls import urlpatterns as portal_urlpatterns
from trunks.models import AuditRecord


def reference_base(request):
    return render(request, "base.html")


class ReferenceAuditAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "tenant_name",
        "actor_username",
        "kind",
        "status",
        "trunk_username",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["trunk_username", "description", "caller_id_number"]


reference_admin = admin.AdminSite(name="bench_admin")
reference_admin.register(AuditRecord, ReferenceAuditAdmin)

urlpatterns = [
    path("__bench__/base/", reference_base, name="bench-base"),
    path("__bench__/admin/", reference_admin.urls),
    *portal_urlpatterns,
]


def audit_admin_changelist_url() -> str:
    """The changelist users would reach for: the portal's admin if it lists audit records."""
    if admin.site.is_registered(AuditRecord):
        return "/admin/trunks/auditrecord/"
    return "/__bench__/admin/trunks/auditrecord/"
