"""The app's URL namespaces: `trunks` (create), `audit` (the log), `tenants` (admins' pages)."""

from django.urls import include, path

trunk_patterns: list = []
audit_patterns: list = []
tenant_patterns: list = []

urlpatterns = [
    path("trunks/", include((trunk_patterns, "trunks"))),
    path("audit/", include((audit_patterns, "audit"))),
    path("tenants/", include((tenant_patterns, "tenants"))),
]
