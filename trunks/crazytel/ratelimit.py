"""Crazytel's per-key rate limit, respected by every process of the deployment, and a circuit breaker.

Crazytel allows 60 requests a minute per API key. One limiter state per key lives where every web
process and worker sees it, in a backend: `RedisBackend` here (atomic Lua scripts), or the
database's (trunks.tenants.upstream.DatabaseBackend, one row; a token is one conditional UPDATE)
when there is no Redis. Never a per-process cache. This module knows no database and no tenant. The state's name is an HMAC
of the API key under a key derived from SECRET_KEY, so neither Redis nor the database holds the key.

The bucket holds CRAZYTEL_RATE_LIMIT_PER_MINUTE tokens and each spent token comes back one window
plus CRAZYTEL_RATE_LIMIT_GUARD seconds after it was spent (a sliding-window log). A classic bucket
that refills at a constant rate lets up to twice its size through in some 60-second window; this
one never lets more than its size. The guard is the headroom: a token is spent when it is granted,
but Crazytel counts the request when it arrives, a little later and by a little more or less each
time; holding each token that much longer than the window keeps any 60 s of arrivals (a sliding
window or a calendar minute, whichever Crazytel counts) within the budget, so the whole budget can
be Crazytel's 60 rather than a count kept back (issue 17: 55 of 60 were usable).

Writes (creates, changes) have a reserve: a read (the numbers, the balance) is granted only while
fewer than `capacity - write_reserve` tokens are spent, so reads alone can never take the last
CRAZYTEL_RATE_LIMIT_WRITE_RESERVE requests of the minute (at most a fifth of the budget) that
colleagues' creates need.

How the Crazytel client uses it (one limiter per key, shared state):

    limiter.acquire(write=…)                # before each request; may raise RateLimited
    ... send the request ...
    if response.status_code == 429:
        limiter.note_retry_after(parse_retry_after(response.headers.get("Retry-After")))
    else:
        limiter.note_result(server_error=response.status_code >= 500)
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.encoding import force_bytes
from redis.exceptions import NoScriptError

from portal.metrics import limiter_refusal_count, limiter_wait_observe

from .errors import RateLimited

KEY_SALT = "trunks.ratelimit"


def rate_limited_error(message: str, *, retry_after: float) -> Exception:
    """The RateLimited error a caller catches; `retry_after` in whole seconds, at least 1.

    status is None: nothing was sent, so there is no upstream status to record.
    """
    return RateLimited(message, retry_after=retry_after, status=None)


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


@dataclass(frozen=True)
class Decision:
    """The outcome of one attempt to take a token."""

    granted: bool
    # Why not: "window" (no token left), "blocked" (after a 429), "breaker" (upstream failing).
    reason: str = ""
    wait: float = 0.0
    # Granted: whether the breaker's count of failures was above zero then (None: not known).
    failing: bool | None = None


# Decision.reason → the refusal reason portal.metrics counts.
_REFUSAL_REASONS = {"window": "budget", "blocked": "retry_after", "breaker": "breaker"}


class Backend(Protocol):
    def take(self, key: str, *, capacity: int, window: float) -> Decision: ...

    def block(self, key: str, *, seconds: float | None, base: float, cap: float) -> float: ...

    def result(self, key: str, *, server_error: bool, threshold: int, cooloff: float) -> bool: ...


def backoff_delay(level: int, *, base: float, cap: float, jitter: float) -> float:
    """Capped exponential backoff with "equal jitter": between half and all of base·2^level."""
    delay = min(cap, base * (2 ** min(level, 30)))
    return delay / 2 + delay / 2 * jitter


# A 429 this long after the previous block ended starts the backoff from the bottom again.
BACKOFF_RESET_AFTER = 60.0

_TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local breaker = tonumber(redis.call('HGET', KEYS[2], 'breaker_until') or '0')
if breaker > now then return {'breaker', tostring(breaker - now)} end
local blocked = tonumber(redis.call('HGET', KEYS[2], 'blocked_until') or '0')
if blocked > now then return {'blocked', tostring(blocked - now)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < capacity then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  return {'granted', tostring(now), tonumber(redis.call('HGET', KEYS[2], 'failures') or '0')}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {'window', tostring(tonumber(oldest[2]) + window - now)}
"""

_BLOCK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local current = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
local delay
if ARGV[1] ~= '' then
  delay = tonumber(ARGV[1])
else
  local level = tonumber(redis.call('HGET', KEYS[1], 'backoff_level') or '0')
  if now - math.max(current, tonumber(redis.call('HGET', KEYS[1], 'last_429_at') or '0'))
      > tonumber(ARGV[5]) then
    level = 0
  end
  local base = tonumber(ARGV[2])
  local cap = tonumber(ARGV[3])
  delay = math.min(cap, base * 2 ^ math.min(level, 30))
  delay = delay / 2 + delay / 2 * tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'backoff_level', level + 1)
end
redis.call('HSET', KEYS[1], 'last_429_at', now)
local untl = math.max(current, now + delay)
redis.call('HSET', KEYS[1], 'blocked_until', untl)
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(untl - now)
"""

_RESULT_LUA = """
if ARGV[1] == '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  redis.call('EXPIRE', KEYS[1], 3600)
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], 3600)
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'breaker_until', now + tonumber(ARGV[3]))
  return 1
end
return 0
"""


class _Script:
    """A Lua script run by its SHA1 (EVALSHA), sent to a server that does not know it yet.

    Hashed once per process: redis-py's register_script hashed all three for every backend, that
    is for every call."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(
            source.encode(), usedforsecurity=False
        ).hexdigest()  # Redis names scripts so

    def __call__(self, client, keys, args):
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a new or flushed server
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


_TAKE = _Script(_TAKE_LUA)
_BLOCK = _Script(_BLOCK_LUA)
_RESULT = _Script(_RESULT_LUA)


class RedisBackend:
    """The limiter state in Redis: a sorted set of grant times and a hash; every step one script,
    one round trip.

    Time is Redis's own clock (TIME), so web servers with slightly different clocks agree.
    """

    def __init__(self, client, *, prefix: str = "portal:crazytel-ratelimit"):
        self.client = client
        self.prefix = prefix

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}:{key}:grants", f"{self.prefix}:{key}:state"

    def take(self, key: str, *, capacity: int, window: float) -> Decision:
        outcome, value, *failures = _TAKE(
            self.client, self._keys(key), (capacity, window, uuid.uuid4().hex)
        )
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        if outcome == "granted":
            return Decision(True, failing=bool(int(failures[0])) if failures else None)
        return Decision(False, outcome, max(0.0, float(value)))

    def block(self, key: str, *, seconds: float | None, base: float, cap: float) -> float:
        args = ["" if seconds is None else seconds, base, cap, random.random(), BACKOFF_RESET_AFTER]  # noqa: S311 (jitter)
        return float(_BLOCK(self.client, (self._keys(key)[1],), args))

    def result(self, key: str, *, server_error: bool, threshold: int, cooloff: float) -> bool:
        args = [1 if server_error else 0, threshold, cooloff]
        return bool(_RESULT(self.client, (self._keys(key)[1],), args))

    def reset(self, key: str) -> None:
        self.client.delete(*self._keys(key))


_derived: tuple[str, hmac.HMAC] | None = None


def key_id(api_key: str) -> str:
    """The name of a key's limiter state: an HMAC of the key under a key derived from SECRET_KEY
    (django.utils.crypto.salted_hmac's, the derivation done once per SECRET_KEY, not per call)."""
    global _derived
    secret = settings.SECRET_KEY
    if _derived is None or _derived[0] != secret:
        derived = hashlib.sha256(force_bytes(KEY_SALT) + force_bytes(secret)).digest()
        _derived = (secret, hmac.new(derived, digestmod=hashlib.sha256))
    mac = _derived[1].copy()
    mac.update(force_bytes(api_key))
    return mac.hexdigest()


class RateLimiter:
    """One Crazytel API key's share of the upstream: rate limit, 429 blocks, circuit breaker.

    Instances are cheap; all state is in the backend, so every instance for the same key (in any
    process) agrees.
    """

    def __init__(
        self,
        *,
        api_key: str,
        backend: Backend,
        per_window: int | None = None,
        window: float | None = None,
        max_wait: float | None = None,
        breaker_threshold: int | None = None,
        breaker_cooloff: float | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        retry_after_max: float | None = None,
        label: str = "",
        write_reserve: int | None = None,
        guard: float | None = None,
    ):
        if not api_key:
            raise ValueError("A rate limiter needs the API key it limits.")
        self.key = key_id(api_key)
        self.backend = backend
        self.capacity = per_window or settings.CRAZYTEL_RATE_LIMIT_PER_MINUTE
        self.window = window or settings.CRAZYTEL_RATE_LIMIT_WINDOW
        self.guard = max(
            0.0, getattr(settings, "CRAZYTEL_RATE_LIMIT_GUARD", 0.0) if guard is None else guard
        )
        self.max_wait = settings.CRAZYTEL_RATE_LIMIT_MAX_WAIT if max_wait is None else max_wait
        self.breaker_threshold = breaker_threshold or settings.CRAZYTEL_BREAKER_THRESHOLD
        self.breaker_cooloff = breaker_cooloff or settings.CRAZYTEL_BREAKER_COOLOFF
        self.backoff_base = backoff_base or settings.CRAZYTEL_BACKOFF_BASE
        self.backoff_max = backoff_max or settings.CRAZYTEL_BACKOFF_MAX
        self.retry_after_max = retry_after_max or settings.CRAZYTEL_RETRY_AFTER_MAX
        # Who the metrics name for this key's waits and refusals (the caller's choice: a tenant).
        self.label = label
        reserve = (
            getattr(settings, "CRAZYTEL_RATE_LIMIT_WRITE_RESERVE", 0)
            if write_reserve is None
            else write_reserve
        )
        # The reserve is at most a fifth of the budget, so a small budget keeps room for reads.
        self.write_reserve = max(0, min(reserve, self.capacity // 5))
        self.read_capacity = self.capacity - self.write_reserve
        # The token just granted found no failures counted, and none was noted since: a good
        # answer to its call has nothing to reset (see note_result).
        self._nothing_to_reset = False

    def __repr__(self) -> str:
        # The HMAC is not secret, but a short prefix is enough to tell limiters apart in logs.
        return f"<RateLimiter {self.key[:12]}… {self.capacity}/{self.window:g}s+{self.guard:g}>"

    def acquire(self, *, write: bool = False) -> None:
        """Take a token, waiting at most `max_wait` seconds; else raise RateLimited(retry_after=…).

        A read (`write=False`) may not take the tokens reserved for writes.
        """
        capacity = self.capacity if write else self.read_capacity
        started = time.monotonic()
        deadline = started + self.max_wait
        waited = False
        while True:
            decision = self.backend.take(
                self.key, capacity=capacity, window=self.window + self.guard
            )
            if decision.granted:
                self._nothing_to_reset = decision.failing is False
                if waited:
                    limiter_wait_observe(tenant=self.label, seconds=time.monotonic() - started)
                return
            remaining = deadline - time.monotonic()
            if decision.wait > remaining:
                limiter_refusal_count(tenant=self.label, reason=_REFUSAL_REASONS[decision.reason])
                raise self._error(decision)
            # A little past the moment a token returns, so the next try finds it.
            time.sleep(max(decision.wait, 0.0) + 0.005)
            waited = True

    def _error(self, decision: Decision) -> Exception:
        seconds = _seconds(decision.wait)
        if decision.reason == "breaker":
            message = (
                f"Crazytel is failing; the portal paused calls for {seconds} s. "
                "Nothing was sent. Try again after that."
            )
        elif decision.reason == "blocked":
            message = (
                f"Crazytel asked the portal to slow down. Nothing was sent; "
                f"try again in {seconds} s."
            )
        else:
            message = (
                "The portal has used this account's share of Crazytel's requests for the "
                f"minute. Nothing was sent; try again in {seconds} s."
            )
        return rate_limited_error(message, retry_after=seconds)

    def note_retry_after(self, seconds: float | None) -> None:
        """After a 429: block every process for `seconds` (capped), or a capped, jittered backoff."""
        if seconds is not None:
            if not math.isfinite(seconds) or seconds < 0:
                seconds = None
            else:
                seconds = min(seconds, self.retry_after_max)
        self.backend.block(self.key, seconds=seconds, base=self.backoff_base, cap=self.backoff_max)

    def note_result(self, *, server_error: bool) -> None:
        """After any other response: a 5xx counts towards the breaker, anything else resets it.

        A good answer to a call whose token found no failures counted skips the reset (a round
        trip to the backend on nearly every call): a failure another process notes between that
        token and this answer then stays counted, so the breaker may open one call sooner while
        Crazytel flaps, never later, and no call more goes upstream."""
        nothing_to_reset, self._nothing_to_reset = self._nothing_to_reset, False
        if not server_error and nothing_to_reset:
            return
        self.backend.result(
            self.key,
            server_error=server_error,
            threshold=self.breaker_threshold,
            cooloff=self.breaker_cooloff,
        )
