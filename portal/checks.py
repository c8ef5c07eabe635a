"""System checks for the portal's own settings (`manage.py check`, run at every start)."""

import base64
import binascii

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False


@register(Tags.security)
def credentials_keys_check(app_configs=None, **kwargs):
    """CREDENTIALS_ENCRYPTION_KEYS: present, each a Fernet key, and none of them the SECRET_KEY."""
    keys = list(getattr(settings, "CREDENTIALS_ENCRYPTION_KEYS", []) or [])
    if not keys:
        return [
            Error(
                "CREDENTIALS_ENCRYPTION_KEYS is not set: tenants' API keys cannot be stored or read.",
                hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
                id="portal.E005",
            )
        ]
    problems = []
    secrets = {settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])}
    for position, key in enumerate(keys, start=1):
        # Never the key itself in a message: only its position in the list.
        if key in secrets:
            problems.append(
                Error(
                    f"CREDENTIALS_ENCRYPTION_KEYS entry {position} equals the SECRET_KEY.",
                    hint="Use a separate Fernet key: whoever learns one secret must not learn both.",
                    id="portal.E001",
                )
            )
        elif not _is_fernet_key(key):
            problems.append(
                Error(
                    f"CREDENTIALS_ENCRYPTION_KEYS entry {position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes).",
                    id="portal.E002",
                )
            )
    if len(set(keys)) != len(keys):
        problems.append(
            Warning("CREDENTIALS_ENCRYPTION_KEYS lists the same key twice.", id="portal.W002")
        )
    return problems


@register(Tags.security)
def trusted_proxy_check(app_configs=None, **kwargs):
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if not isinstance(count, int) or count < 0:
        return [Error("TRUSTED_PROXY_COUNT must be 0 or a positive number.", id="portal.E003")]
    return []


@register()
def crazytel_rate_limit_check(app_configs=None, **kwargs):
    """The per-key budget must be positive and within Crazytel's 60 requests a minute."""
    per_minute = getattr(settings, "CRAZYTEL_RATE_LIMIT_PER_MINUTE", 55)
    window = getattr(settings, "CRAZYTEL_RATE_LIMIT_WINDOW", 60.0)
    if not isinstance(per_minute, int) or per_minute < 1 or window <= 0:
        return [
            Error(
                "CRAZYTEL_RATE_LIMIT_PER_MINUTE must be at least 1 and CRAZYTEL_RATE_LIMIT_WINDOW "
                "more than 0.",
                id="portal.E004",
            )
        ]
    if per_minute * 60 / window > 60:
        return [
            Warning(
                f"The rate limit allows {per_minute} requests per {window:g} s, more than "
                "Crazytel's 60 a minute: Crazytel will answer 429.",
                hint="At most 60 a minute; CRAZYTEL_RATE_LIMIT_GUARD keeps the headroom.",
                id="portal.W003",
            )
        ]
    return []


@register(Tags.security)
def audit_checkpoint_key_check(app_configs=None, **kwargs):
    """AUDIT_CHECKPOINT_KEY: set in production, and not one of the SECRET_KEYs."""
    key = getattr(settings, "AUDIT_CHECKPOINT_KEY", "")
    if not key:
        if settings.DEBUG:
            return [
                Warning(
                    "AUDIT_CHECKPOINT_KEY is not set: `audit_checkpoint` cannot sign checkpoints.",
                    id="portal.W030",
                )
            ]
        return [
            Error(
                "AUDIT_CHECKPOINT_KEY is not set: the audit log's checkpoints cannot be signed, so "
                "records removed from the end of a chain would go unnoticed.",
                hint="Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
                id="portal.E030",
            )
        ]
    if key in {settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])}:
        return [
            Error(
                "AUDIT_CHECKPOINT_KEY equals the SECRET_KEY.",
                hint="Use a key of its own: whoever learns one secret must not learn both.",
                id="portal.E031",
            )
        ]
    return []


@register()
def schedules_check(app_configs=None, **kwargs):
    """portal/schedules.py: unique names, and every job's function imports (a moved module fails here)."""
    from django.utils.module_loading import import_string

    from portal.schedules import SCHEDULES

    problems = []
    names = [schedule.name for schedule in SCHEDULES]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Error(f"Two schedules are named {name!r}.", id="portal.E020"))
    for schedule in SCHEDULES:
        try:
            function = import_string(schedule.function)
        except ImportError as exc:
            problems.append(
                Error(
                    f"Schedule {schedule.name!r} names {schedule.function!r}, which does not import: {exc}",
                    hint="Update its path in portal/schedules.py.",
                    id="portal.E021",
                )
            )
            continue
        if not callable(function):
            problems.append(
                Error(
                    f"Schedule {schedule.name!r}: {schedule.function!r} is not callable.",
                    id="portal.E022",
                )
            )
    return problems
