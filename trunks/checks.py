"""System checks: the portal refuses to start without usable credential encryption keys."""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, register

HINT = (
    "Set CREDENTIALS_ENCRYPTION_KEYS to one or more Fernet keys, newest first, comma-separated. "
    'Make one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


@register("security")
def credentials_encryption_keys_check(app_configs=None, **kwargs):
    """CREDENTIALS_ENCRYPTION_KEYS is set, each entry is a Fernet key, none is the SECRET_KEY."""
    keys = list(getattr(settings, "CREDENTIALS_ENCRYPTION_KEYS", []) or [])
    if not keys:
        return [
            Error(
                "CREDENTIALS_ENCRYPTION_KEYS is not set: the portal cannot store or read tenants' "
                "API keys.",
                hint=HINT,
                id="trunks.E001",
            )
        ]
    errors = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            # Never echo the value: it is a secret (or meant to be one).
            errors.append(
                Error(
                    f"CREDENTIALS_ENCRYPTION_KEYS entry {position} of {len(keys)} is not a Fernet "
                    "key (32 url-safe base64-encoded bytes).",
                    hint=HINT,
                    id="trunks.E002",
                )
            )
        if key == settings.SECRET_KEY:
            errors.append(
                Error(
                    f"CREDENTIALS_ENCRYPTION_KEYS entry {position} is the SECRET_KEY: use a separate "
                    "key, so that one leaked secret does not reveal the other.",
                    hint=HINT,
                    id="trunks.E003",
                )
            )
    if len(set(keys)) != len(keys):
        errors.append(
            Error(
                "CREDENTIALS_ENCRYPTION_KEYS lists the same key twice.",
                hint="Remove the repeated key; keep the newest first.",
                id="trunks.E004",
            )
        )
    return errors
