"""Phone numbers for people: Australian national format, with Crazytel's label when it gives one.

Only for display. The value posted upstream is always Crazytel's number exactly as it listed it.
"""

from functools import lru_cache

import phonenumbers

# Crazytel lists numbers in international form without "+": 61412345678, 61298765432.
_DEFAULT_REGION = "AU"


def number_national(number) -> str:
    """`61412345678` → `0412 345 678`; `61298765432` → `02 9876 5432`; anything unparsable as given.

    Also takes a number already written nationally (`0412345678`). Memoised: an audit page shows
    50 numbers and an export a million, mostly repeats, and parsing costs ~0.1 ms each.
    """
    return _national("" if number is None else str(number).strip())


@lru_cache(maxsize=8192)
def _national(raw: str) -> str:
    digits = raw.lstrip("+").replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit()):
        return raw
    try:
        if digits.startswith("0"):
            parsed = phonenumbers.parse(digits, _DEFAULT_REGION)
        else:
            parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    if parsed.country_code != 61:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    # libphonenumber writes Australian landlines as "(02) 9876 5432"; people (and Crazytel's own
    # portal) write "02 9876 5432".
    return national.replace("(", "").replace(")", "")


def number_display(number: str, label: str = "") -> str:
    """The national format with the label appended: `0412 345 678 — Ops mobile`."""
    shown = number_national(number)
    label = " ".join((label or "").split())
    return f"{shown} — {label}" if label else shown
