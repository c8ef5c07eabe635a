"""The sandbox's URLs, mounted under /sandbox/ only when SANDBOX_ENABLED is on."""

from django.urls import path, re_path

from . import views

app_name = "sandbox"
urlpatterns = [
    path("api/v1/balance/", views.balance, name="balance"),
    path("api/v1/account/verified-cli/", views.verified_cli, name="verified-cli"),
    path("api/v1/sip-trunks/", views.sip_trunks, name="sip-trunks"),
    re_path(r"^api/v1/sip-trunks/(?P<trunk_id>[^/]+)/?$", views.sip_trunk, name="sip-trunk"),
    # Anything else under the API answers like FastAPI does, not with the portal's HTML 404.
    re_path(r"^api/v1/", views.not_found, name="not-found"),
]
