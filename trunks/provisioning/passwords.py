"""Crazytel's trunk-password rules, defined once (the form checks them, the page's checklist shows
them), and the trunk-password generator.

The same rule list is rendered into the page (json_script) so static/js/trunk_form.js ticks the
checklist with the very regular expressions the server applies. Patterns therefore use only syntax
that means the same in Python's `re` and JavaScript's RegExp.
"""

import re
import secrets
import string
from dataclasses import dataclass

PASSWORD_MAX_LENGTH = 128
GENERATED_LENGTH = 20


@dataclass(frozen=True)
class PasswordRule:
    id: str
    label: str
    pattern: str
    # True: the rule holds when the pattern is NOT found (e.g. "no character outside the set").
    forbids: bool = False
    # "crazytel": the API's documented rule; "portal": ours, so the password works on every SIP device.
    source: str = "crazytel"

    def passes(self, value: str) -> bool:
        found = re.search(self.pattern, value) is not None
        return not found if self.forbids else found

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "pattern": self.pattern,
            "forbids": self.forbids,
        }


PASSWORD_RULES: tuple[PasswordRule, ...] = (
    PasswordRule("length", "At least 8 characters", r"[\s\S]{8}"),
    PasswordRule("upper", "At least one upper-case letter (A to Z)", r"[A-Z]"),
    PasswordRule("lower", "At least one lower-case letter (a to z)", r"[a-z]"),
    PasswordRule("digit", "At least one digit (0 to 9)", r"[0-9]"),
    # Crazytel does not document a character set; SIP digest authentication hashes bytes, and
    # spaces, accents or control characters break many phones' configuration, so we keep to
    # printable ASCII.
    PasswordRule(
        "charset",
        "Only letters, digits and ASCII symbols (no spaces or accents)",
        r"[^!-~]",
        forbids=True,
        source="portal",
    ),
)


def password_failures(value: str) -> list[PasswordRule]:
    """The rules `value` breaks, in the order they are listed."""
    return [rule for rule in PASSWORD_RULES if not rule.passes(value)]


def password_rules_json() -> list[dict[str, object]]:
    """The rules as plain data for the page's live checklist."""
    return [rule.as_json() for rule in PASSWORD_RULES]


_ALPHABET = string.ascii_letters + string.digits


def trunk_password_generate(length: int = GENERATED_LENGTH) -> str:
    """A random password meeting every rule: letters and digits only, `length` ≥ 16 characters.

    Letters and digits alone give ~5.95 bits per character (≈119 bits at 20), and survive every
    phone's configuration screen and provisioning file without escaping.
    """
    if length < 16:
        raise ValueError("generated passwords are at least 16 characters long")
    while True:
        # Rejection sampling keeps every character uniformly random (no forced positions).
        candidate = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if not password_failures(candidate):
            return candidate
