"""Short-lived shared caches for the audit log's pages: the chart's per-day counts and the
"Who" choice list, the form's recent unknown outcomes. Each is stale by at most AUDIT_CACHE_SECONDS;
the figures computed from records are also dropped as soon as a final record is committed (a
generation number their keys include, bumped by trunks.audit.writer once per write: an attempt's
pending record does not bump it, so a chart counts an attempt once it is final, or after at most
AUDIT_CACHE_SECONDS if it stays pending), the people list (which depends on memberships, not
records) only by its TTL."""

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

RECORDS = "records"  # figures computed from the records
PEOPLE = "people"  # figures computed from memberships
TENANTS = (
    "tenants"  # the list of every tenant (trunks.access), dropped on any tenant's save or delete
)


def _ttl() -> int:
    return getattr(settings, "AUDIT_CACHE_SECONDS", 60)


def _bump(*generations: str) -> None:
    try:
        cache.set_many({f"audit:generation:{g}": uuid.uuid4().hex for g in generations}, None)
    except Exception:  # A cache outage must never stop the log being written.
        logger.warning("audit cache: could not invalidate", exc_info=True)


def audit_cache_clear() -> None:
    """Drop every cached figure now: the next page view recomputes them."""
    _bump(RECORDS, PEOPLE)


def audit_cache_generation_bump(generation: str) -> None:
    """Drop the figures of `generation` once the current transaction commits (at once outside
    one): a reader that computed from the rows before the commit stored them under the old
    generation."""
    transaction.on_commit(lambda: _bump(generation))


def audit_cache_invalidate() -> None:
    """After a record is written: drop the figures computed from records once the write is
    committed (at once outside a transaction). One bump per write is enough: a reader keeps a
    figure under the generation it read *before* computing, so whatever it computed before the
    commit is stored under a generation the commit's bump has already replaced."""
    audit_cache_generation_bump(RECORDS)


def audit_cached[T](parts: tuple, compute: Callable[[], T], *, generation: str = RECORDS) -> T:
    """`compute()`, shared for AUDIT_CACHE_SECONDS under a key made of `parts` (which must name
    everything the result depends on, including who may see it) and the current `generation`."""
    ttl = _ttl()
    if ttl <= 0:
        return compute()
    generation_key = f"audit:generation:{generation}"
    key = f"audit:{generation}:" + hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    try:
        # One round trip: the current generation and the stored (generation, value) pair, which
        # is only good while its generation is still the current one.
        found = cache.get_many([generation_key, key])
        current = found.get(generation_key)
        if current is None:
            cache.add(generation_key, uuid.uuid4().hex, None)
            current = cache.get(generation_key)
    except Exception:
        logger.warning("audit cache: unavailable, computing", exc_info=True)
        return compute()
    stored: Any = found.get(key)
    if stored is not None and stored[0] == current:
        return stored[1]
    value = compute()
    try:
        cache.set(key, (current, value), ttl)
    except Exception:
        logger.warning("audit cache: could not store", exc_info=True)
    return value
