"""The CSRF token every page carries (the header's hx-headers, the log-out form), masked as Django
masks it, at a tenth of the cost.

Django's get_token() masks the CSRF secret with 32 characters drawn one `secrets.choice()` at a
time (and draws 32 more for a new secret when the request brought no cookie): 35 to 60 µs a page,
8 to 14 % of a bare page's profile (issue 17). This draws the same characters, each equally likely,
from one `secrets.token_bytes()` call, and leaves everything else to Django: the token has Django's
format (mask, then the secret shifted by the mask), CsrfViewMiddleware checks it and sets the cookie
exactly as after get_token(), and a request without a secret gets a new one the same way.

`csrf` replaces Django's built-in context processor of the same name (settings' list runs after
the built-in one, so its `csrf_token` is the one templates see).
"""

import secrets

from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
from django.utils.functional import SimpleLazyObject

_CHARS = CSRF_ALLOWED_CHARS
_INDEX = {char: i for i, char in enumerate(_CHARS)}
# Bytes from this value up are dropped, so every character is equally likely (256 = 4 * 62 + 8).
_UNBIASED_BELOW = 256 - 256 % len(_CHARS)


def _random_indexes(count: int) -> list[int]:
    """`count` uniformly random indexes into the allowed characters, from the system's CSPRNG."""
    indexes: list[int] = []
    while len(indexes) < count:
        indexes += [
            byte % len(_CHARS) for byte in secrets.token_bytes(count + 8) if byte < _UNBIASED_BELOW
        ]
    return indexes[:count]


def _secret_for(request) -> str:
    """The request's CSRF secret, as get_token() finds or makes it (and marks the cookie to be
    sent, which renews its expiry)."""
    secret = request.META.get("CSRF_COOKIE")
    if secret is None:
        secret = "".join(_CHARS[i] for i in _random_indexes(CSRF_SECRET_LENGTH))
        request.META["CSRF_COOKIE"] = secret
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    return secret


def csrf_token_masked(request) -> str:
    """What django.middleware.csrf.get_token(request) returns: a fresh mask, then the secret with
    each character moved forward by the mask's."""
    secret = _secret_for(request)
    mask = _random_indexes(CSRF_SECRET_LENGTH)
    cipher = "".join(
        _CHARS[(_INDEX[c] + m) % len(_CHARS)] for c, m in zip(secret, mask, strict=True)
    )
    return "".join(_CHARS[m] for m in mask) + cipher


def csrf(request) -> dict:
    return {"csrf_token": SimpleLazyObject(lambda: csrf_token_masked(request))}
