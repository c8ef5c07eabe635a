"""One-time submission tokens: each rendering of the trunk form carries one, so a second POST of it
(double click, back button, a retried request) finds the first attempt instead of a second trunk."""

import secrets

from django.core import signing

_TOKEN_SALT = "trunks.trunk_create.submission"
# A form left open longer than a working day is refused (the person checks it and submits again).
SUBMISSION_TOKEN_MAX_AGE = 12 * 60 * 60


def submission_token_issue(*, user) -> str:
    """A signed token for one rendering of the form, bound to `user`."""
    return signing.dumps({"u": user.pk, "n": secrets.token_urlsafe(24)}, salt=_TOKEN_SALT)


def submission_token_nonce(*, user, token: str) -> str | None:
    """The token's unique part (what the audit record keeps), if `token` is valid and `user`'s."""
    try:
        payload = signing.loads(token or "", salt=_TOKEN_SALT, max_age=SUBMISSION_TOKEN_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict) or payload.get("u") != user.pk:
        return None
    nonce = payload.get("n")
    return nonce if isinstance(nonce, str) and 16 <= len(nonce) <= 64 else None
