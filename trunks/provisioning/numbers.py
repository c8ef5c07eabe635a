"""A tenant's verified numbers (caller ID and SMS sender candidates), from Crazytel through a
shared cache with a single flight on a cold cache. Failures are not cached."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from trunks.crazytel.contract import number_is_mobile_sender
from trunks.crazytel.errors import CrazytelError, RateLimited, RejectedKey, Unreachable
from trunks.crazytel.parsing import VerifiedNumber
from trunks.models import Tenant
from trunks.tenants.credentials import CredentialError
from trunks.tenants.services import tenant_connection_mark_failed
from trunks.tenants.upstream import crazytel_client_for

from .messages import MESSAGE_CREDENTIALS, MESSAGE_REJECTED_KEY, retry_seconds

# longest a fetch holds the lock (a crashed process's lock lapses after this).
NUMBERS_WAIT = 5.0
NUMBERS_POLL = 0.05
NUMBERS_LOCK_TTL = 30


@dataclass(frozen=True)
class VerifiedNumbers:
    """The tenant's verified numbers, or why they could not be had."""

    numbers: tuple[VerifiedNumber, ...] = ()
    error: str = ""
    category: str = ""
    fetched_at: Any = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def mobiles(self) -> tuple[VerifiedNumber, ...]:
        return tuple(n for n in self.numbers if number_is_mobile_sender(n.number))

    def contains(self, number: str) -> bool:
        return any(n.number == number for n in self.numbers)


def verified_numbers_cache_key(*, tenant: Tenant) -> str:
    """Per tenant, and per key and base URL, so a replaced key never sees the old account's numbers.

    Built from when the key was set and the URL, never from the key itself.
    """
    stamp = tenant.api_key_set_at.isoformat() if tenant.api_key_set_at else "none"
    fingerprint = hashlib.sha256(f"{stamp}|{tenant.effective_base_url}".encode()).hexdigest()[:16]
    return f"trunks:verified-numbers:v1:{tenant.pk}:{fingerprint}"


def verified_numbers_forget(*, tenant: Tenant) -> None:
    cache.delete(verified_numbers_cache_key(tenant=tenant))


def _numbers_error_message(error: CrazytelError) -> str:
    if isinstance(error, RejectedKey):
        return MESSAGE_REJECTED_KEY
    if isinstance(error, Unreachable):
        return "Crazytel could not be reached to list this tenant's verified numbers."
    if isinstance(error, RateLimited):
        return f"Crazytel is busy; try again in {retry_seconds(error)} seconds."
    return "Crazytel's list of verified numbers could not be read. " + (error.message or "")


def verified_numbers_get(*, tenant: Tenant, refresh: bool = False) -> VerifiedNumbers:
    """The tenant's verified numbers, from the shared cache unless `refresh` or expired.

    Failures are not cached: the next look asks Crazytel again. A rejected key flags the tenant.
    A refresh asks Crazytel at most once per tenant per CRAZYTEL_NUMBERS_REFRESH_INTERVAL seconds;
    a refresh within that time is an ordinary look (the cache, or a single flight).
    """
    key = verified_numbers_cache_key(tenant=tenant)
    lock = f"{key}:fetching"
    token = secrets.token_hex(8)
    held = False
    if refresh and not cache.add(
        f"{key}:refreshed", True, settings.CRAZYTEL_NUMBERS_REFRESH_INTERVAL
    ):
        # Another refresh of this tenant's numbers asked Crazytel moments ago (the atomic add says
        # so): share its answer rather than spend another request of the tenant's budget.
        refresh = False
    if not refresh:
        # Single flight: on a cold cache one process asks Crazytel while the others wait for
        # its answer in the cache (up to NUMBERS_WAIT seconds, then they ask themselves).
        deadline = time.monotonic() + NUMBERS_WAIT
        while True:
            cached = cache.get(key)
            if cached is not None:
                return _numbers_from_cache(cached)
            held = cache.add(lock, token, NUMBERS_LOCK_TTL)
            if held or time.monotonic() >= deadline:
                break
            time.sleep(NUMBERS_POLL)
        if held and (cached := cache.get(key)) is not None:
            # Filled between our look and taking the lock.
            _numbers_lock_release(lock, token)
            return _numbers_from_cache(cached)
    try:
        return _numbers_fetch(tenant=tenant, key=key)
    finally:
        if held:
            _numbers_lock_release(lock, token)


# How long a process waits for another's fetch of the same numbers, how often it looks, and the


def _numbers_from_cache(cached: dict) -> VerifiedNumbers:
    return VerifiedNumbers(
        numbers=tuple(VerifiedNumber(**n) for n in cached["numbers"]),
        fetched_at=cached["fetched_at"],
        from_cache=True,
    )


def _numbers_lock_release(lock: str, token: str) -> None:
    # Only our own lock (one that lapsed may have been taken by another process since).
    if cache.get(lock) == token:
        cache.delete(lock)


def _numbers_fetch(*, tenant: Tenant, key: str) -> VerifiedNumbers:
    try:
        numbers = crazytel_client_for(tenant).verified_numbers()
    except CredentialError:
        return VerifiedNumbers(error=MESSAGE_CREDENTIALS, category="credentials")
    except CrazytelError as error:
        if isinstance(error, RejectedKey):
            tenant_connection_mark_failed(
                tenant=tenant,
                message="Crazytel rejected the API key (401) listing numbers. Set a new key.",
            )
        return VerifiedNumbers(error=_numbers_error_message(error), category=error.category)
    now = timezone.now()
    cache.set(
        key,
        {"numbers": [{"number": n.number, "label": n.label} for n in numbers], "fetched_at": now},
        settings.CRAZYTEL_NUMBERS_CACHE_TTL,
    )
    return VerifiedNumbers(numbers=tuple(numbers), fetched_at=now)
