"""The second factor for local (password) accounts: TOTP with recovery codes (django-otp).

Required of superusers and tenant admins (they hold the API keys), optional for everyone else,
never asked of a session that signed in through the identity provider (the provider does that).
Failed codes count towards the same lockout as failed passwords (django-axes, per username and
address), on top of django-otp's own per-device back-off.
"""

import base64

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from trunks.models import Membership, Role

from .models import SignInOutcome
from .services import sign_in_event_record

AUTH_METHOD_KEY = "portal_auth_method"
AUTH_METHOD_OIDC = "oidc"
RECOVERY_CODE_COUNT = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def signed_in_through_provider(request: HttpRequest) -> bool:
    return request.session.get(AUTH_METHOD_KEY) == AUTH_METHOD_OIDC


def second_factor_required(*, user) -> bool:
    """Superusers and tenant admins must use a second factor with their password."""
    if not settings.SECOND_FACTOR_REQUIRED:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role=Role.ADMIN).exists()


def second_factor_enrolled(*, user) -> bool:
    return user_has_device(user, confirmed=True)


def second_factor_needed(*, request: HttpRequest) -> bool:
    """Whether this session must show a second factor (at log-in or re-authentication)."""
    user = request.user
    if not user.is_authenticated or signed_in_through_provider(request):
        return False
    return second_factor_enrolled(user=user) or second_factor_required(user=user)


def totp_device_pending(*, user) -> TOTPDevice:
    """The unconfirmed authenticator being set up (one at a time; a new page keeps the same key)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


def totp_qr_data_uri(device: TOTPDevice) -> str:
    """The enrolment QR code as an SVG data: URI (the CSP allows data: images, no inline script)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=4, border=2)


def totp_secret_text(device: TOTPDevice) -> str:
    """The key for typing into an app by hand, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@transaction.atomic
def totp_device_confirm(*, user, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the authenticator with a code from it; new recovery codes (shown once), or None."""
    if device.user_id != user.pk or device.confirmed or not device.verify_token(_digits(code)):
        return None
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return recovery_codes_replace(user=user)


@transaction.atomic
def recovery_codes_replace(*, user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def recovery_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _digits(code: str) -> str:
    return "".join(str(code or "").split())[:32]


def _code_fits(device, code: str) -> bool:
    """Whether `code` has the shape of this device's codes (an authenticator's are all digits)."""
    if not code:
        return False
    if isinstance(device, TOTPDevice):
        return code.isdigit() and len(code) == device.digits
    return True


def second_factor_throttled(*, user) -> bool:
    """Whether django-otp's back-off (after a wrong code) holds every device of this person."""
    devices = list(devices_for_user(user, confirmed=True))
    return bool(devices) and not any(d.verify_is_allowed()[0] for d in devices)


def second_factor_locked(*, request: HttpRequest, user) -> bool:
    return AxesProxyHandler.is_locked(request, {"username": user.get_username()})


def second_factor_verify(*, request: HttpRequest, user, code: str, login: bool = True):
    """Check a code from the authenticator, or a recovery code (used up). The device, or None.

    A wrong code counts as a failed log-in for django-axes (same lockout as the password) and is
    recorded; `login` marks the session as verified (django_otp.login)."""
    code = _digits(code)
    for device in devices_for_user(user, confirmed=True):
        if not _code_fits(device, code):
            # A recovery code is not a wrong authenticator code: asking the authenticator would
            # start its back-off and refuse the person's next real code.
            continue
        if device.verify_is_allowed()[0] and device.verify_token(code):
            if login:
                otp_login(request, device)
            return device
    user_login_failed.send(
        sender=__name__, credentials={"username": user.get_username()}, request=request
    )
    sign_in_event_record(
        method="totp",
        outcome=SignInOutcome.FAILED,
        request=request,
        reason="wrong_code",
        message="A wrong or reused second-factor code.",
        user=user,
    )
    return None


@receiver(user_logged_in, dispatch_uid="accounts.forget_auth_method")
def _auth_method_on_login(sender, request, user, **kwargs):
    # A password log-in after a provider sign-in in the same browser must not inherit the
    # provider's exemption; portal.oidc sets the marker again after its own login().
    if request is not None and hasattr(request, "session"):
        request.session.pop(AUTH_METHOD_KEY, None)
