"""Paths of URL names that take no arguments, reversed once per process: every page's frame (the
brand, the menu, log-out, password) names eight of them, and reverse() walks the resolver each time
(a tenth of a bare page's CPU in issue 17's profile)."""

import functools

from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse


@functools.lru_cache(maxsize=256)
def _reversed(name: str, resolver, prefix: str) -> str:
    return reverse(name, urlconf=resolver.urlconf_name)


def fixed_url(name: str) -> str:
    """reverse(name), remembered under the current URLconf's resolver (a new one after
    clear_url_caches) and script prefix."""
    return _reversed(name, get_resolver(get_urlconf()), get_script_prefix())
