"""{% fixed_url 'name' %}: {% url 'name' %} for URL names without arguments, reversed once per
process (portal.fixed_urls)."""

from django import template

from portal.fixed_urls import fixed_url as fixed_url_path

register = template.Library()


@register.simple_tag
def fixed_url(name: str) -> str:
    return fixed_url_path(name)
