"""The shared rate-limit state of each Crazytel key when there is no Redis."""

from django.db import models


class RateLimitBucket(models.Model):
    """The shared Crazytel rate-limit state of one API key, when there is no Redis
    (trunks.tenants.upstream).

    `key` is an HMAC of the API key, never the key. A row changes in one conditional UPDATE (a
    token) or under a row lock (a 429, a failure); every time in it is the database's clock.
    """

    key = models.CharField(max_length=64, primary_key=True)
    # Unix times of the grants still inside the window, oldest first.
    grants = models.JSONField(default=list)
    # After a 429: no call before this Unix time. `backoff_level` grows with 429s without Retry-After.
    blocked_until = models.FloatField(default=0)
    backoff_level = models.PositiveSmallIntegerField(default=0)
    last_429_at = models.FloatField(default=0)
    # The circuit breaker: consecutive upstream 5xx, and no call before `breaker_until`.
    failures = models.PositiveIntegerField(default=0)
    breaker_until = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"rate limit {self.key[:12]}…"
