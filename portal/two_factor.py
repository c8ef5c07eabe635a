"""The second-factor pages: enrol an authenticator (QR code), type a code after the password,
see recovery codes once, and the re-authentication that asks for a code as well as the password."""

from django import forms
from django.contrib.auth import authenticate, logout
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from portal.auth import lockout_response
from trunks.accounts.second_factor import (
    recovery_codes_left,
    second_factor_enrolled,
    second_factor_locked,
    second_factor_needed,
    second_factor_required,
    second_factor_throttled,
    second_factor_verify,
    signed_in_through_provider,
    totp_device_confirm,
    totp_device_pending,
    totp_qr_data_uri,
    totp_secret_text,
)
from trunks.reauth import ReauthForm, reauth_mark, safe_next_url

RECOVERY_SHOWN_KEY = "two_factor_recovery_codes"
WRONG_CODE = "That code is not right, or was used already. Try the current one."
THROTTLED = "Too many wrong codes in a row: wait a few seconds, then type the current code."


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app, or a recovery code",
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


@never_cache
def two_factor_verify(request: HttpRequest):
    """After the password: the code. Failures count towards the password's lockout."""
    user = request.user
    next_url = safe_next_url(request, request.POST.get("next") or request.GET.get("next"))
    if not second_factor_enrolled(user=user):
        return redirect(f"{reverse('two_factor_setup')}?next={next_url}")
    if request.user.is_verified():
        return redirect(next_url)
    if second_factor_locked(request=request, user=user):
        logout(request)
        return lockout_response(request, credentials={"username": user.get_username()})
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        throttled = second_factor_throttled(user=user)
        if second_factor_verify(request=request, user=user, code=form.cleaned_data["code"]):
            return redirect(next_url)
        if second_factor_locked(request=request, user=user):
            logout(request)
            return lockout_response(request, credentials={"username": user.get_username()})
        form.add_error("code", THROTTLED if throttled else WRONG_CODE)
    return render(request, "registration/two_factor_verify.html", {"form": form, "next": next_url})


@never_cache
def two_factor_setup(request: HttpRequest):
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code."""
    user = request.user
    next_url = safe_next_url(request, request.POST.get("next") or request.GET.get("next"))
    if signed_in_through_provider(request):
        return redirect(next_url)
    if second_factor_enrolled(user=user) and not user.is_verified():
        # Changing the authenticator needs the current one first.
        return redirect(f"{reverse('two_factor_verify')}?next={request.path}")
    device = totp_device_pending(user=user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = totp_device_confirm(user=user, device=device, code=form.cleaned_data["code"])
        if codes is not None:
            # The code just typed proved the new authenticator: this session is verified by it.
            otp_login(request, device)
            request.session[RECOVERY_SHOWN_KEY] = codes
            return redirect(f"{reverse('two_factor_recovery')}?next={next_url}")
        form.add_error(
            "code", "That code does not match. Check the time on your phone and try again."
        )
    context = {
        "form": form,
        "next": next_url,
        "qr": totp_qr_data_uri(device),
        "secret": totp_secret_text(device),
        "required": second_factor_required(user=user),
        "replacing": second_factor_enrolled(user=user),
    }
    return render(request, "registration/two_factor_setup.html", context)


@never_cache
def two_factor_recovery(request: HttpRequest):
    """The recovery codes, shown once after enrolment."""
    codes = request.session.pop(RECOVERY_SHOWN_KEY, None)
    next_url = safe_next_url(request, request.GET.get("next"))
    if not codes:
        return redirect(next_url)
    return render(
        request, "registration/two_factor_recovery.html", {"codes": codes, "next": next_url}
    )


class ReauthWithCodeForm(ReauthForm):
    code = CodeForm.base_fields["code"]


@sensitive_post_parameters("password", "code")
@never_cache
def reauth_view(request: HttpRequest):
    """trunks.reauth's confirmation, plus the second factor for a local account that has one or
    must have one. (A person who came through the identity provider has no portal password; the
    page says to sign in again at the provider.)"""
    next_url = safe_next_url(request, request.POST.get("next") or request.GET.get("next"))
    needs_code = second_factor_needed(request=request)
    form_class = ReauthWithCodeForm if needs_code else ReauthForm
    form = form_class(request.POST or None)
    user = request.user
    if request.method == "POST" and form.is_valid():
        if needs_code and second_factor_locked(request=request, user=user):
            logout(request)
            return lockout_response(request, credentials={"username": user.get_username()})
        confirmed = authenticate(
            request, username=user.get_username(), password=form.cleaned_data["password"]
        )
        if confirmed is None or confirmed.pk != user.pk:
            form.add_error("password", "That is not your password.")
        elif needs_code and not second_factor_verify(
            request=request, user=user, code=form.cleaned_data["code"], login=False
        ):
            form.add_error("code", WRONG_CODE)
        else:
            reauth_mark(request)
            return redirect(next_url)
    context = {
        "form": form,
        "next": next_url,
        "needs_code": needs_code,
        "via_provider": signed_in_through_provider(request),
        "recovery_left": recovery_codes_left(user=user) if needs_code else None,
    }
    return render(request, "registration/reauth.html", context)
