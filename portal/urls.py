"""The portal's URLs."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from portal import health, metrics_view, oidc, two_factor, views
from portal.auth import PortalAdminAuthenticationForm, PortalLoginView
from portal.password_change import PasswordChangeView

admin.site.site_header = "Crazytel trunk portal — administration"
admin.site.site_title = "Crazytel trunk portal"
admin.site.login_form = PortalAdminAuthenticationForm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("accounts/login/", PortalLoginView.as_view(), name="login"),
    path("accounts/logout/", oidc.logout_view, name="logout"),
    path("accounts/oidc/login/", oidc.oidc_login, name="oidc_login"),
    path("accounts/oidc/callback/", oidc.oidc_callback, name="oidc_callback"),
    path("accounts/confirm-password/", two_factor.reauth_view, name="reauth"),
    path("accounts/two-factor/", two_factor.two_factor_verify, name="two_factor_verify"),
    path("accounts/two-factor/setup/", two_factor.two_factor_setup, name="two_factor_setup"),
    path(
        "accounts/two-factor/recovery-codes/",
        two_factor.two_factor_recovery,
        name="two_factor_recovery",
    ),
    path("accounts/password_change/", PasswordChangeView.as_view(), name="password_change"),
    path("admin/", admin.site.urls),
    path("", include("trunks.urls")),
]

# Error pages (issue 15): 400, 403 and 404 are the templates of the same names rendered with the
# request (header and menu kept); the 500 page is rendered without touching the database.
handler500 = "portal.views.server_error"

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("trunks.sandbox.urls")))
