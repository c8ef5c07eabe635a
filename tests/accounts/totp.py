"""Codes an authenticator app would show, for the tests of the second factor."""

import base64
import time

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def code_for(device: TOTPDevice, *, offset: int = 0) -> str:
    """The device's code for the current time step (`offset` steps later)."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def code_from(secret_text: str, *, drift: int = 0) -> str:
    """What an authenticator app shows for the key a page printed (base32, spaces allowed)."""
    secret = secret_text.replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, drift=drift):06d}"


def steps_to_an_unused_code(device: TOTPDevice) -> int:
    """How many steps ahead the next code the device will accept is: django-otp refuses a code of
    a time step it has already accepted (device.last_t), so right after a code was used the next
    one is the following step's (0 once the clock has moved on; never a wait)."""
    device.refresh_from_db(fields=["last_t"])
    now = int((time.time() - device.t0) // device.step)
    return max(0, device.last_t + 1 - now)
