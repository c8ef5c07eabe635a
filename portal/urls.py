"""The portal's URLs."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import health, views
from portal.password_change import PasswordChangeView
from trunks.reauth import reauth_view

admin.site.site_header = "Crazytel trunk portal — administration"
admin.site.site_title = "Crazytel trunk portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/confirm-password/", reauth_view, name="reauth"),
    path("accounts/password_change/", PasswordChangeView.as_view(), name="password_change"),
    path("admin/", admin.site.urls),
    path("", include("trunks.urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("trunks.sandbox.urls")))
