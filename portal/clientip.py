"""The client's IP address: REMOTE_ADDR, or the hop our own trusted proxies saw.

X-Forwarded-For is written by whoever sends the request, so only its last TRUSTED_PROXY_COUNT
entries (appended by our own proxies) can be believed. With no trusted proxy (the default) the
header is ignored entirely and REMOTE_ADDR is the client.
"""

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest


# Per process, for the few addresses it hears from: parsing one is a tenth of the request id
# middleware's CPU (issue 17). Bounded, so addresses a client makes up cannot grow it.
@functools.lru_cache(maxsize=1024)
def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip_from(request: HttpRequest) -> str | None:
    """The address of whoever sent the request, as far as the configured proxies can vouch."""
    remote = _valid_ip(request.META.get("REMOTE_ADDR"))
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < count:
        # Fewer hops than proxies: the request did not come through them all. Trust nothing extra.
        return remote
    return _valid_ip(hops[-count]) or remote


def client_ip(request: HttpRequest) -> str | None:
    """For django-axes (AXES_CLIENT_IP_CALLABLE) and the audit log: the same address everywhere."""
    cached = getattr(request, "client_ip", None)
    return cached if cached is not None else client_ip_from(request)
