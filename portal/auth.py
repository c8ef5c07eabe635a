"""Login-related glue: the log-in page (who may use a password), the lockout page, and the
session's start time for the absolute timeout."""

import time

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.dispatch import receiver
from django.shortcuts import render

from portal.middleware import INVITATIONS_PROMPT_KEY, SESSION_STARTED_KEY
from portal.password_change import password_change_note
from trunks.tenants.invitations import invitations_pending_for


class LocalLoginPolicyMixin:
    """LOCAL_LOGIN decides who may still log in with a portal password (on every password form),
    and a username longer than any account's is refused before it is tried.

    AuthenticationForm sets the username field's max_length after the field is built, so Django
    never checks it; an over-long name then reached django-axes, whose record of the failure holds
    255 characters (a 500 on PostgreSQL)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not local_login_allowed(user):
            raise ValidationError(
                f"Your account signs in with {settings.OIDC_BUTTON_LABEL}: use the button on "
                "the portal's log-in page.",
                code="local_login_off",
            )


class PortalAuthenticationForm(LocalLoginPolicyMixin, AuthenticationForm):
    """The portal's log-in form."""


class PortalAdminAuthenticationForm(LocalLoginPolicyMixin, AdminAuthenticationForm):
    """Django admin's own log-in form, held to the same LOCAL_LOGIN rule."""


def local_login_allowed(user) -> bool:
    if settings.LOCAL_LOGIN == "all":
        return True
    return settings.LOCAL_LOGIN == "superusers" and user.is_superuser


class PortalLoginView(auth_views.LoginView):
    form_class = PortalAuthenticationForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = settings.OIDC_ENABLED
        context["oidc_label"] = settings.OIDC_BUTTON_LABEL
        context["local_login"] = settings.LOCAL_LOGIN
        return context


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' lockout: the login page again, saying why and for how long (AXES_LOCKOUT_CALLABLE)."""
    cool_off = get_cool_off(request)
    wait = _minutes(cool_off.total_seconds()) if cool_off else "a while"
    # The portal's own spraying limits (portal.throttle) name the limit reached; axes' lock is
    # for this username from this address.
    cause = {
        "address": "Too many failed log-ins from your address.",
        "username": "Too many failed log-ins for this username.",
    }.get(
        getattr(request, "portal_login_throttle", ""),
        "Too many failed log-ins for this username from your address.",
    )
    if getattr(request, "portal_login_throttle", ""):
        wait = _minutes(settings.AXES_COOLOFF_TIME.total_seconds())
    message = (
        f"{cause} Log-in is paused for up to {wait}; try again later, or ask your tenant's admin "
        "to unlock the account."
    )
    form = AuthenticationForm(request)
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form.initial["username"] = username[:150] if isinstance(username, str) else ""
    context = {
        "form": form,
        "lockout_message": message,
        "next": request.POST.get("next", ""),
        "oidc_enabled": settings.OIDC_ENABLED,
        "oidc_label": settings.OIDC_BUTTON_LABEL,
        "local_login": settings.LOCAL_LOGIN,
    }
    # 429 Too Many Requests, with the page a person can read (not a bare 403 text).
    response = render(request, "registration/login.html", context, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


@receiver(user_logged_in, dispatch_uid="portal.session_started")
def session_started_on_login(sender, request, user, **kwargs):
    """The absolute session timeout counts from the moment of login (AbsoluteSessionTimeoutMiddleware)."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED_KEY] = int(time.time())
        # Whether a password someone else chose must be replaced: read once here, kept in the
        # session (portal.password_change), instead of on every page.
        password_change_note(request, user=user)
        if invitations_pending_for(user=user).exists():
            # Shown before the first page (portal.middleware.InvitationPromptMiddleware).
            request.session[INVITATIONS_PROMPT_KEY] = True
