"""The app's URL namespaces: `trunks` (create, list, a trunk's page and changes), `audit` (the log), `tenants` (admins' pages)."""

from django.urls import include, path, re_path

from .audit import views as audit_views
from .bulk import views as bulk_views
from .lifecycle import views as lifecycle_views
from .provisioning import views as trunk_views
from .tenants import invitation_views
from .tenants import views as tenant_views

# A trunk's username as Crazytel makes them (trunks.crazytel.contract.USERNAME_RE), any case.
TRUNK = r"(?P<username>[Cc][Tt][0-9]{6})"
trunk_patterns: list = [
    path("", lifecycle_views.trunk_list, name="list"),
    re_path(rf"^{TRUNK}/$", lifecycle_views.trunk_detail, name="detail"),
    re_path(rf"^{TRUNK}/resolve/$", lifecycle_views.trunk_resolve, name="resolve"),
    re_path(
        rf"^{TRUNK}/(?P<action>enabled|password|settings|send-again)/$",
        lifecycle_views.trunk_action,
        name="action",
    ),
    path("new/", trunk_views.trunk_create_view, name="create"),
    path("new/numbers/", trunk_views.trunk_numbers_view, name="numbers"),
    path("new/password/", trunk_views.trunk_password_view, name="password"),
    path("attempts/<uuid:uuid>/", trunk_views.trunk_attempt_view, name="attempt"),
    path("bulk/", bulk_views.bulk_upload_view, name="bulk"),
    path("bulk/template.csv", bulk_views.bulk_template_view, name="bulk-template"),
    path("bulk/<uuid:uuid>/", bulk_views.bulk_job_view, name="bulk-job"),
    path("bulk/<uuid:uuid>/confirm/", bulk_views.bulk_job_confirm_view, name="bulk-confirm"),
    path("bulk/<uuid:uuid>/cancel/", bulk_views.bulk_job_cancel_view, name="bulk-cancel"),
    path("bulk/<uuid:uuid>/resume/", bulk_views.bulk_job_resume_view, name="bulk-resume"),
    path("bulk/<uuid:uuid>/results.csv", bulk_views.bulk_job_download_view, name="bulk-download"),
]
audit_patterns: list = [
    path("", audit_views.audit_list, name="list"),
    path("chart/", audit_views.audit_chart, name="chart"),
    path("<int:pk>/", audit_views.audit_detail, name="detail"),
    path("<int:pk>/resolve/", audit_views.audit_resolve, name="resolve"),
    path("export.csv", audit_views.audit_export, {"fmt": "csv"}, name="export-csv"),
    path("export.jsonl", audit_views.audit_export, {"fmt": "jsonl"}, name="export-jsonl"),
]
tenant_patterns: list = [
    path("", tenant_views.tenant_list, name="list"),
    path("new/", tenant_views.tenant_create, name="create"),
    path("<slug:slug>/", tenant_views.tenant_detail, name="detail"),
    path("<slug:slug>/edit/", tenant_views.tenant_edit, name="edit"),
    path("<slug:slug>/active/", tenant_views.tenant_set_active, name="set_active"),
    path("<slug:slug>/key/", tenant_views.tenant_key, name="key"),
    path("<slug:slug>/test/", tenant_views.tenant_connection_test, name="test"),
    path("<slug:slug>/members/", tenant_views.member_add, name="member_add"),
    path("<slug:slug>/members/<int:pk>/role/", tenant_views.member_role, name="member_role"),
    path("<slug:slug>/members/<int:pk>/remove/", tenant_views.member_remove, name="member_remove"),
    path(
        "<slug:slug>/members/<int:pk>/password/",
        tenant_views.member_password_reset,
        name="member_password_reset",
    ),
    path("<slug:slug>/members/<int:pk>/unlock/", tenant_views.member_unlock, name="member_unlock"),
    path(
        "<slug:slug>/invitations/<int:pk>/withdraw/",
        tenant_views.member_invitation_withdraw,
        name="invitation_withdraw",
    ),
    path("<slug:slug>/deactivate/", tenant_views.tenant_deactivate, name="deactivate"),
]
invitation_patterns: list = [
    path("", invitation_views.invitation_list, name="list"),
    path("<int:pk>/", invitation_views.invitation_answer, name="answer"),
]

urlpatterns = [
    path("trunks/", include((trunk_patterns, "trunks"))),
    path("audit/", include((audit_patterns, "audit"))),
    path("tenants/", include((tenant_patterns, "tenants"))),
    path("invitations/", include((invitation_patterns, "invitations"))),
]
