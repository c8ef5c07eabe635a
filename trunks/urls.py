"""The app's URL namespaces: `trunks` (create), `audit` (the log), `tenants` (admins' pages)."""

from django.urls import include, path

from .views import audit as audit_views

trunk_patterns: list = []
audit_patterns: list = [
    path("", audit_views.audit_list, name="list"),
    path("<int:pk>/", audit_views.audit_detail, name="detail"),
    path("export.csv", audit_views.audit_export, {"fmt": "csv"}, name="export-csv"),
    path("export.jsonl", audit_views.audit_export, {"fmt": "jsonl"}, name="export-jsonl"),
]
tenant_patterns: list = []

urlpatterns = [
    path("trunks/", include((trunk_patterns, "trunks"))),
    path("audit/", include((audit_patterns, "audit"))),
    path("tenants/", include((tenant_patterns, "tenants"))),
]
