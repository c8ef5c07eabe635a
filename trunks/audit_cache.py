"""Short-lived shared caches for the audit log's pages: the chart's per-day counts and the
"Who" choice list. Stale by at most AUDIT_CACHE_SECONDS, and dropped at once when a record is
written (a generation number every key includes, bumped by trunks.audit)."""

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)


_GENERATION_KEY = "audit:generation"


def _ttl() -> int:
    return getattr(settings, "AUDIT_CACHE_SECONDS", 60)


def audit_cache_clear() -> None:
    """Drop every cached figure now: the next page view recomputes them."""
    try:
        cache.set(_GENERATION_KEY, uuid.uuid4().hex, None)
    except Exception:  # A cache outage must never stop the log being written.
        logger.warning("audit cache: could not invalidate", exc_info=True)


def audit_cache_invalidate() -> None:
    """After a write: drop every cached figure now, and again once the transaction commits (so a
    reader between the two cannot keep a figure computed before the commit)."""
    audit_cache_clear()
    transaction.on_commit(audit_cache_clear)


def audit_cached[T](parts: tuple, compute: Callable[[], T]) -> T:
    """`compute()`, shared for AUDIT_CACHE_SECONDS under a key made of `parts` (which must name
    everything the result depends on, including who may see it)."""
    ttl = _ttl()
    if ttl <= 0:
        return compute()
    try:
        generation = cache.get(_GENERATION_KEY)
        if generation is None:
            generation = uuid.uuid4().hex
            cache.add(_GENERATION_KEY, generation, None)
            generation = cache.get(_GENERATION_KEY) or generation
        digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
        key = f"audit:{generation}:{digest}"
        value: Any = cache.get(key)
    except Exception:
        logger.warning("audit cache: unavailable, computing", exc_info=True)
        return compute()
    if value is None:
        value = compute()
        try:
            cache.set(key, value, ttl)
        except Exception:
            logger.warning("audit cache: could not store", exc_info=True)
    return value
