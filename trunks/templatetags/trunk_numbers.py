"""Template filters for phone numbers: `{{ number|national }}` → `0412 345 678`."""

from django import template

from trunks.numbers import number_national

register = template.Library()


@register.filter
def national(value) -> str:
    return number_national(str(value or ""))
