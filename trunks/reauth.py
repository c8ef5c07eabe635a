"""Re-authentication: the person types their password again before a sensitive change (setting a
tenant's API key, here or in the admin).

If the password was not confirmed in the last REAUTH_MAX_AGE seconds, `reauth_redirect` sends the
person to /accounts/confirm-password/?next=<the page> (for htmx, as a whole-page redirect) and they
come back after typing it. A POST that arrives stale is not carried out; it is sent back to the page
it came from (the form's GET) — nothing half-done, the person submits again after confirming.
"""

import time
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

REAUTH_SESSION_KEY = "reauth_at"
# The one re-authentication age: a password typed this recently (seconds) is fresh enough.
REAUTH_MAX_AGE = 300


def reauth_is_fresh(request: HttpRequest, *, max_age: int = REAUTH_MAX_AGE) -> bool:
    """Whether this session confirmed the password in the last `max_age` seconds."""
    confirmed = request.session.get(REAUTH_SESSION_KEY)
    if not isinstance(confirmed, int | float):
        return False
    age = time.time() - confirmed
    return 0 <= age <= max_age


def reauth_mark(request: HttpRequest) -> None:
    request.session[REAUTH_SESSION_KEY] = int(time.time())


def safe_next_url(request: HttpRequest, value: str | None) -> str:
    """`value` when it is a page of this site (the `next` of a sign-in or confirmation), else home."""
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return reverse("home")


def _page_to_return_to(request: HttpRequest) -> str:
    if getattr(request, "htmx", False) and request.htmx.current_url_abs_path:
        return request.htmx.current_url_abs_path
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    # A POST: go back to the form (its GET), whose path is this one.
    return request.path


def reauth_redirect(request: HttpRequest):
    """Send the person to confirm their password, then back to where they were."""
    url = f"{reverse('reauth')}?{urlencode({'next': _page_to_return_to(request)})}"
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


class ReauthForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
