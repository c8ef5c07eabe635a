"""Paths of URL names that take no arguments, reversed once per process: every page's frame (the
brand, the menu, log-out, password) names eight of them, and reverse() walks the resolver each time
(a tenth of a bare page's CPU in issue 17's profile)."""

import functools
import uuid

from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse


@functools.lru_cache(maxsize=256)
def _reversed(name: str, resolver, prefix: str) -> str:
    return reverse(name, urlconf=resolver.urlconf_name)


def fixed_url(name: str) -> str:
    """reverse(name), remembered under the current URLconf's resolver (a new one after
    clear_url_caches) and script prefix."""
    return _reversed(name, get_resolver(get_urlconf()), get_script_prefix())


# A value of each kind that reverse() writes as str(value), and that no URL's fixed part holds.
_MARKERS = {
    int: 9_007_199_254_740_993,
    uuid.UUID: uuid.UUID("7f3a9c1e-5b2d-4e8f-a6c0-d94b1e27f358"),
}


@functools.lru_cache(maxsize=256)
def _around(name: str, kind: type, resolver, prefix: str) -> tuple[str, str]:
    marker = str(_MARKERS[kind])
    url = reverse(name, urlconf=resolver.urlconf_name, args=[_MARKERS[kind]])
    head, found, tail = url.partition(marker)
    if not found or marker in tail:
        raise ValueError(f"{name}'s URL does not hold its argument once")
    return head, tail


def fixed_url_with(name: str, value: int | uuid.UUID) -> str:
    """reverse(name, args=[value]) for a URL taking one id (a non-negative int or a UUID, which
    reverse() writes as str(value)): the path around the id reversed once per process, as
    fixed_url's. Any other value goes through reverse()."""
    kind = type(value)
    if kind not in _MARKERS or (kind is int and value < 0):
        return reverse(name, args=[value])
    head, tail = _around(name, kind, get_resolver(get_urlconf()), get_script_prefix())
    return f"{head}{value}{tail}"
