"""People's own passwords: the change page for everyone, and the middleware that keeps a person whose
password someone else chose (an admin, a command) on that page until they have set their own.

Separate from sign-in's other steps (a second factor has its own middleware) so each stays small.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from trunks.tenants.accounts import password_change_clear, password_change_is_required

# URL names a person who must set a password may still reach. The second-factor pages too: a tenant
# admin or superuser without an authenticator is sent to enrol first (portal.middleware's
# SecondFactorMiddleware, which lets no other page through, this one included), then here.
ALLOWED_URL_NAMES = (
    "password_change",
    "logout",
    "login",
    "healthz",
    "two_factor_setup",
    "two_factor_verify",
    "two_factor_recovery",
)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change (old password, new one twice, the password rules); a forced
    change ends here too. Django keeps this session signed in and ends the others."""

    template_name = "registration/password_change_form.html"

    def get_success_url(self):
        return reverse("home")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["forced"] = password_change_is_required(user=self.request.user)
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        password_change_clear(user=self.request.user)
        messages.success(self.request, "Your password is changed.")
        return response


class PasswordChangeRequiredMiddleware:
    """Until a person replaces a password someone else chose, every page sends them to set theirs
    (htmx requests by a whole-page redirect, so no fragment swaps in the form)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._allowed = None

    def _allowed_paths(self) -> tuple[str, ...]:
        if self._allowed is None:
            static = "/" + settings.STATIC_URL.lstrip("/")
            self._allowed = (*(reverse(name) for name in ALLOWED_URL_NAMES), static)
        return self._allowed

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self._allowed_paths())
            and password_change_is_required(user=user)
        ):
            target = reverse("password_change")
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(target)
            return redirect(target)
        return self.get_response(request)
