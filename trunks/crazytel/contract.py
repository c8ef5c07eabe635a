"""Crazytel's rules, written once: the fields of POST /sip-trunks/, a trunk username, an SMS sender.

The trunk field spec feeds the portal's form (labels, help, defaults), the JSON body the client
sends, the audit log's labels, the settings shown after a create and the sandbox's defaults.
"""

import re
from dataclasses import dataclass
from typing import Any

# ASCII digits only (\d would take any script's digits), and no trailing newline ($ would).
USERNAME_RE = re.compile(r"\ACT[0-9]{6}\Z")
USERNAME_HELP = "CT and 6 digits, as Crazytel shows it"
USERNAME_INVALID = (
    "Enter the trunk's username as Crazytel shows it: CT and 6 digits, e.g. CT123456."
)
# Crazytel accepts as an SMS sender only an Australian mobile, written 614… in its lists.
MOBILE_PREFIX = "614"


def username_is_valid(value: str) -> bool:
    """Whether `value` is a trunk username as Crazytel makes them (CT + 6 ASCII digits)."""
    return isinstance(value, str) and USERNAME_RE.match(value) is not None


def number_is_mobile_sender(number: str) -> bool:
    """Whether Crazytel accepts `number` as an SMS sender (an Australian mobile: starts with 614)."""
    return (number or "").startswith(MOBILE_PREFIX)


@dataclass(frozen=True)
class TrunkField:
    """One field of Crazytel's POST /sip-trunks/ body."""

    name: str
    label: str
    help_text: str
    # The JSON type sent: str or bool.
    type: type = str
    # For booleans: the value sent when the form did not say.
    default: Any = None
    required: bool = False
    # Optional text fields are left out of the request when empty rather than sent as "".
    omit_when_empty: bool = False
    # Holds a phone number (shown in national format).
    number: bool = False
    # Never recorded, never shown again.
    secret: bool = False
    # How the success page shows an empty value.
    empty_text: str = "—"


# In the order the form shows them.
TRUNK_FIELDS: tuple[TrunkField, ...] = (
    TrunkField(
        "caller_id_number",
        "Caller ID number",
        "Shown to the people this trunk calls. Crazytel accepts only numbers verified on the "
        "account; numbers bought from Crazytel are verified automatically, others are verified "
        "in Crazytel's own portal.",
        required=True,
        number=True,
    ),
    TrunkField(
        "sms_sender",
        "SMS sender",
        "Optional. The mobile number (614…) shown when sending SMS from the CrazyPhone "
        "softphone; it must be verified on the account. Trunks sharing one SMS sender can "
        "sync their messages.",
        omit_when_empty=True,
        number=True,
        empty_text="None",
    ),
    TrunkField(
        "password",
        "Trunk password",
        "Crazytel requires at least 8 characters with an upper-case letter, a lower-case letter "
        "and a digit. Use Generate for a strong one. It is shown once after creation and never "
        "stored here.",
        required=True,
        secret=True,
    ),
    TrunkField(
        "description",
        "Description",
        "Optional. Free text to identify the trunk later, up to 100 characters.",
        omit_when_empty=True,
    ),
    TrunkField(
        "area_code",
        "Area code",
        "Optional. Crazytel uses it for geographic routing of the trunk's calls.",
        omit_when_empty=True,
        empty_text="None",
    ),
    TrunkField(
        "enabled",
        "Enabled",
        "A disabled trunk exists but cannot make or receive calls.",
        type=bool,
        default=True,
    ),
    TrunkField(
        "hide_caller_id",
        "Hide caller ID",
        "Outbound calls show as a private number. Warning: Crazytel notes this may affect "
        "international call connectivity and reliability.",
        type=bool,
        default=False,
    ),
    TrunkField(
        "softphone_show_balance",
        "Show balance in CrazyPhone",
        "The CrazyPhone softphone displays the account's balance.",
        type=bool,
        default=True,
    ),
    TrunkField(
        "softphone_sync_sms",
        "Sync SMS in CrazyPhone",
        "Syncs SMS across every trunk that uses the same SMS sender. It only means something "
        "with an SMS sender chosen above.",
        type=bool,
        default=False,
    ),
)
TRUNK_FIELD = {f.name: f for f in TRUNK_FIELDS}
TRUNK_FIELD_NAMES = tuple(f.name for f in TRUNK_FIELDS)
TRUNK_BOOL_DEFAULTS = {f.name: f.default for f in TRUNK_FIELDS if f.type is bool}
TRUNK_NUMBER_FIELDS = tuple(f.name for f in TRUNK_FIELDS if f.number)


def trunk_payload(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for POST /sip-trunks/: exactly the documented fields, with their types."""
    payload: dict[str, Any] = {}
    for spec in TRUNK_FIELDS:
        value = data.get(spec.name)
        if spec.type is bool:
            payload[spec.name] = bool(value) if value is not None else spec.default
            continue
        text = "" if value is None else str(value)
        if spec.omit_when_empty and not text:
            continue
        payload[spec.name] = text
    return payload
