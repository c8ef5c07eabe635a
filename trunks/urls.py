"""The app's URL namespaces: `trunks` (create), `audit` (the log), `tenants` (admins' pages)."""

from django.urls import include, path

from .views import trunks as trunk_views

trunk_patterns: list = [
    path("new/", trunk_views.trunk_create_view, name="create"),
    path("new/numbers/", trunk_views.trunk_numbers_view, name="numbers"),
    path("new/password/", trunk_views.trunk_password_view, name="password"),
    path("attempts/<uuid:uuid>/", trunk_views.trunk_attempt_view, name="attempt"),
]
audit_patterns: list = []
tenant_patterns: list = []

urlpatterns = [
    path("trunks/", include((trunk_patterns, "trunks"))),
    path("audit/", include((audit_patterns, "audit"))),
    path("tenants/", include((tenant_patterns, "tenants"))),
]
