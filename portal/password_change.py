"""People's own passwords: the change page for everyone, and the middleware that keeps a person whose
password someone else chose (an admin, a command) on that page until they have set their own.

Separate from sign-in's other steps (a second factor has its own middleware) so each stays small.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import HASH_SESSION_KEY
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

# What this session knows of the forced change: [the session's password hash when it was read,
# whether the change is required]. Kept in the session so that pages do not ask the database.
SESSION_KEY = "portal_password_change"


def password_change_note(request, *, user=None, required: bool | None = None) -> bool:
    """Read (from the database, unless `required` is given) whether `user` (the request's, by
    default) must set their password, and keep it in their session under the session's current
    password hash. Called at login (portal.auth), where the session is written anyway, and after
    a change."""
    if required is None:
        required = password_change_is_required(user=user if user is not None else request.user)
    request.session[SESSION_KEY] = [request.session.get(HASH_SESSION_KEY), required]
    return required


def password_change_required_for(request) -> bool:
    """Whether the person signed in to this session must set their password, without a query on
    every page.

    A password someone else sets (a tenant admin's reset, Django admin, the command line) is a new
    password hash: Django ends every session that still carries the old hash (the session auth
    hash, checked on each request), so the person logs in again and login notes the new flag. A
    session that survives a change of its hash (the change page, Django's
    update_session_auth_hash) no longer matches the hash noted beside the flag, so the flag is
    read again from the database. A session from before this note existed reads it once too."""
    noted = request.session.get(SESSION_KEY)
    if (
        isinstance(noted, list)
        and len(noted) == 2
        and noted[0] is not None
        and noted[0] == request.session.get(HASH_SESSION_KEY)
    ):
        return bool(noted[1])
    return password_change_note(request)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change (old password, new one twice, the password rules); a forced
    change ends here too. Django keeps this session signed in and ends the others."""

    template_name = "registration/password_change_form.html"

    def get_success_url(self):
        return reverse("home")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["forced"] = password_change_required_for(self.request)
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        password_change_clear(user=self.request.user)
        # Django kept this session signed in under the new password's hash: note it there.
        password_change_note(self.request, required=False)
        messages.success(self.request, "Your password is changed.")
        return response


class PasswordChangeRequiredMiddleware:
    """Until a person replaces a password someone else chose, every page sends them to set theirs
    (htmx requests by a whole-page redirect, so no fragment swaps in the form). The flag comes
    from the session (password_change_required_for), not a query per page."""

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
            and password_change_required_for(request)
        ):
            target = reverse("password_change")
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(target)
            return redirect(target)
        return self.get_response(request)
