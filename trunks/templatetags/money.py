"""`{{ balance|money }}`: an account balance as people read money ($1,234.50, -$5.00)."""

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


def money(value) -> str:
    """Dollars with two decimals and thousands separators; "" for nothing, the value as-is for
    something that is not a number."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


register.filter("money", money)
