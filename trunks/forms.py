"""The portal's forms. Each section belongs to one part of the portal; services do the work."""

import secrets
import unicodedata

from django import forms
from django.core import signing

from .errors import PortalError
from .models import Role, Tenant
from .numbers import number_display, number_is_mobile_sender
from .passwords import PASSWORD_HELP, PASSWORD_MAX_LENGTH, password_failures

# =================================================================================================
# Tenants and members
# =================================================================================================


class AccessibleErrorsMixin:
    """Point each invalid field at its error message (aria-describedby), for screen readers.

    The templates render a field's errors in an element with id "<field id>_error" and its help
    text in "<field id>_helptext" (templates/tenants/_field.html).
    """

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name not in self.fields:
                continue
            bound = self[name]
            ids = [f"{bound.auto_id}_error"]
            if self.fields[name].help_text:
                ids.append(f"{bound.auto_id}_helptext")
            self.fields[name].widget.attrs["aria-describedby"] = " ".join(ids)
            self.fields[name].widget.attrs["aria-invalid"] = "true"

    def add_portal_error(self, error: PortalError) -> None:
        """Show a service's error on its field (or above the form)."""
        field = error.field if error.field in self.fields else None
        self.add_error(field, error.message)
        if field:
            # full_clean ran already: mark the field now.
            self.fields[field].widget.attrs["aria-describedby"] = f"{self[field].auto_id}_error"
            self.fields[field].widget.attrs["aria-invalid"] = "true"


class TenantForm(AccessibleErrorsMixin, forms.Form):
    """Create or edit a tenant. Only superusers may set the base URL (see trunks.services)."""

    name = forms.CharField(max_length=100, help_text="The team's name, as people know it.")
    slug = forms.SlugField(
        label="Short name",
        max_length=50,
        help_text="Lower-case letters, digits and hyphens; used in the portal's URLs.",
    )
    base_url = forms.URLField(
        label="Crazytel base URL",
        required=False,
        assume_scheme="https",
        help_text="Leave empty to use the portal's default Crazytel API URL.",
    )
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        initial=True,
        help_text="Staff can create trunks only for an active tenant.",
    )

    def __init__(self, *args, can_set_base_url: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_set_base_url:
            self.fields["base_url"].disabled = True
            self.fields[
                "base_url"
            ].help_text = "Only portal administrators may change where the key is sent."

    @classmethod
    def initial_for(cls, tenant: Tenant) -> dict:
        return {
            "name": tenant.name,
            "slug": tenant.slug,
            "base_url": tenant.base_url,
            "is_active": tenant.is_active,
        }


class TenantKeyForm(AccessibleErrorsMixin, forms.Form):
    """Set or replace the tenant's API key. Write-only: never prefilled, never shown back."""

    api_key = forms.CharField(
        label="Crazytel API key",
        strip=True,
        max_length=256,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
        help_text="From your Crazytel account. It is stored encrypted and never shown again.",
    )
    confirm_replace = forms.BooleanField(
        label="Yes, replace the current key",
        required=False,
    )

    def __init__(self, *args, replacing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.replacing = replacing
        if not replacing:
            del self.fields["confirm_replace"]

    def clean_confirm_replace(self):
        confirmed = self.cleaned_data.get("confirm_replace")
        if self.replacing and not confirmed:
            raise forms.ValidationError(
                "This tenant has a key already. Tick the box to confirm you want to replace it."
            )
        return confirmed


class MemberAddForm(AccessibleErrorsMixin, forms.Form):
    """Add an existing user to the tenant, or create one (with a password shown once)."""

    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF)
    create_user = forms.BooleanField(
        label="Create this user if they do not exist yet",
        required=False,
        help_text="The portal then shows a generated password once, for you to pass on.",
    )


class MemberRoleForm(AccessibleErrorsMixin, forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ConfirmForm(forms.Form):
    """A yes-I-mean-it checkbox for removing things."""

    confirm = forms.BooleanField(label="Yes, remove", required=True)


# =================================================================================================
# Trunks (issue 5): creating a SIP trunk.
# =================================================================================================


# --- One-time submission tokens ------------------------------------------------------------------

_TOKEN_SALT = "trunks.trunk_create.submission"
# A form left open longer than a working day is refused (the person checks it and submits again).
SUBMISSION_TOKEN_MAX_AGE = 12 * 60 * 60


def submission_token_issue(*, user) -> str:
    """A signed token for one rendering of the form, bound to `user`."""
    return signing.dumps({"u": user.pk, "n": secrets.token_urlsafe(24)}, salt=_TOKEN_SALT)


def submission_token_nonce(*, user, token: str) -> str | None:
    """The token's unique part (what the audit record keeps), if `token` is valid and `user`'s."""
    try:
        payload = signing.loads(token or "", salt=_TOKEN_SALT, max_age=SUBMISSION_TOKEN_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict) or payload.get("u") != user.pk:
        return None
    nonce = payload.get("n")
    return nonce if isinstance(nonce, str) and 16 <= len(nonce) <= 64 else None


# --- Strict booleans -----------------------------------------------------------------------------

_TRUE = {"on", "true", "1"}
_FALSE = {"off", "false", "0", ""}


def _checked(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _TRUE)


class StrictCheckboxInput(forms.CheckboxInput):
    """A checkbox that hands its raw value to the field, so the field can refuse nonsense."""

    def __init__(self, attrs=None):
        super().__init__(attrs, check_test=_checked)

    def value_from_datadict(self, data, files, name):
        if name not in data:
            return None
        values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
        return values[0] if len(values) == 1 else values


class StrictBooleanField(forms.Field):
    """True for "on"/"true"/"1", False when absent or "off"/"false"/"0"; anything else is an error."""

    widget = StrictCheckboxInput
    default_error_messages = {"invalid": "Tick or untick this box (it holds an unexpected value)."}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        if value is None or value is False:
            return False
        if value is True:
            return True
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != bool(initial)
        except forms.ValidationError:
            return True


# --- The trunk form ------------------------------------------------------------------------------

AREA_CODE_CHOICES = [
    ("", "None (no geographic routing)"),
    ("02", "02 — NSW / ACT"),
    ("03", "03 — VIC / TAS"),
    ("07", "07 — QLD"),
    ("08", "08 — SA / WA / NT"),
]
DESCRIPTION_MAX_LENGTH = 100


def _no_control_characters(value: str) -> None:
    # Unicode categories C*: control characters, line breaks, invisible format characters (bidi
    # overrides, zero-width joiners), private-use and unassigned code points.
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise forms.ValidationError(
            "Use a single line of visible text: no line breaks, tabs or invisible characters.",
            code="control_characters",
        )


class TrunkCreateForm(forms.Form):
    """The fields Crazytel's POST /sip-trunks/ takes, named as the API names them.

    Built with the tenant's verified numbers (`numbers`: Crazytel's VerifiedNumber objects); a
    number outside them, or an SMS sender that is not a 614 mobile, never reaches Crazytel.
    """

    submission_token = forms.CharField(widget=forms.HiddenInput, max_length=400)
    # Set when retrying an attempt whose outcome was unknown (its audit record's uuid).
    retry_of = forms.UUIDField(widget=forms.HiddenInput, required=False)
    confirm_retry = StrictBooleanField(
        label="I have checked the Crazytel account: this trunk was not created, so try again",
    )

    caller_id_number = forms.ChoiceField(
        label="Caller ID number",
        help_text=(
            "Shown to the people this trunk calls. Crazytel accepts only numbers verified on the "
            "account; numbers bought from Crazytel are verified automatically, others are verified "
            "in Crazytel's own portal."
        ),
        error_messages={
            "required": "Choose the caller ID number.",
            "invalid_choice": "Choose one of this account's verified numbers.",
        },
    )
    sms_sender = forms.CharField(
        label="SMS sender",
        required=False,
        max_length=32,
        widget=forms.Select,
        help_text=(
            "Optional. The mobile number (614…) shown when sending SMS from the CrazyPhone "
            "softphone; it must be verified on the account. Trunks sharing one SMS sender can "
            "sync their messages."
        ),
    )
    password = forms.CharField(
        label="Trunk password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        # "new-password": browsers must not fill in the person's own portal password here.
        widget=forms.PasswordInput(
            render_value=False,
            attrs={
                "autocomplete": "new-password",
                "autocapitalize": "off",
                "spellcheck": "false",
            },
        ),
        help_text=PASSWORD_HELP,
        error_messages={"required": "Enter a password for the trunk, or use Generate."},
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[_no_control_characters],
        help_text=(
            f"Optional. Free text to identify the trunk later, up to {DESCRIPTION_MAX_LENGTH} "
            "characters."
        ),
    )
    area_code = forms.ChoiceField(
        label="Area code",
        required=False,
        choices=AREA_CODE_CHOICES,
        help_text="Optional. Crazytel uses it for geographic routing of the trunk's calls.",
        error_messages={"invalid_choice": "Choose one of Australia's area codes, or none."},
    )
    enabled = StrictBooleanField(
        label="Enabled",
        initial=True,
        help_text="A disabled trunk exists but cannot make or receive calls.",
    )
    hide_caller_id = StrictBooleanField(
        label="Hide caller ID",
        initial=False,
        help_text=(
            "Outbound calls show as a private number. Warning: Crazytel notes this may affect "
            "international call connectivity and reliability."
        ),
    )
    softphone_show_balance = StrictBooleanField(
        label="Show balance in CrazyPhone",
        initial=True,
        help_text="The CrazyPhone softphone displays the account's balance.",
    )
    softphone_sync_sms = StrictBooleanField(
        label="Sync SMS in CrazyPhone",
        initial=False,
        help_text=(
            "Syncs SMS across every trunk that uses the same SMS sender. It only means something "
            "with an SMS sender chosen above."
        ),
    )

    UPSTREAM_FIELDS = (
        "caller_id_number",
        "sms_sender",
        "password",
        "description",
        "area_code",
        "enabled",
        "hide_caller_id",
        "softphone_show_balance",
        "softphone_sync_sms",
    )

    def __init__(self, *args, numbers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.numbers = tuple(numbers)
        self.fields["caller_id_number"].choices = [("", "Choose a number…")] + [
            (n.number, number_display(n.number, n.label)) for n in self.numbers
        ]
        self.fields["sms_sender"].widget.choices = [("", "None")] + [
            (n.number, number_display(n.number, n.label))
            for n in self.numbers
            if number_is_mobile_sender(n.number)
        ]

    def clean_password(self):
        value = self.cleaned_data["password"]
        failures = password_failures(value)
        if failures:
            raise forms.ValidationError(
                [forms.ValidationError(rule.label, code=f"password_{rule.id}") for rule in failures]
            )
        return value

    def clean_sms_sender(self):
        value = self.cleaned_data["sms_sender"].strip()
        if not value:
            return ""
        if not number_is_mobile_sender(value):
            raise forms.ValidationError(
                "The SMS sender must be an Australian mobile number (starting 614, shown as 04…).",
                code="not_mobile",
            )
        if not any(n.number == value for n in self.numbers):
            raise forms.ValidationError(
                "Choose one of this account's verified mobile numbers.", code="not_verified"
            )
        return value

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("softphone_sync_sms")
            and not cleaned.get("sms_sender")
            and "sms_sender" not in self.errors
        ):
            self.add_error(
                "softphone_sync_sms",
                "SMS sync needs an SMS sender: choose one above, or untick this box.",
            )
        if cleaned.get("retry_of") and not cleaned.get("confirm_retry"):
            self.add_error(
                "confirm_retry",
                "Confirm you have checked the Crazytel account before trying again.",
            )
        return cleaned

    def upstream_data(self) -> dict:
        """The cleaned values Crazytel receives (the service builds the exact JSON)."""
        return {name: self.cleaned_data[name] for name in self.UPSTREAM_FIELDS}


# =================================================================================================
# Unknown outcomes resolved (issue 8)
# =================================================================================================


def _no_hidden_characters(value: str) -> None:
    # Like _no_control_characters, but a note may run over several lines.
    if any(unicodedata.category(ch).startswith("C") for ch in value if ch not in "\r\n"):
        raise forms.ValidationError(
            "Use visible text only: no tabs or invisible characters.", code="control_characters"
        )


class AuditResolveForm(AccessibleErrorsMixin, forms.Form):
    """What the Crazytel account shows for an attempt whose outcome was unknown."""

    OUTCOME_CHOICES = [
        ("created", "Created: the trunk exists in the Crazytel account"),
        ("not_created", "Not created: no such trunk in the Crazytel account"),
    ]

    outcome = forms.ChoiceField(
        label="What the Crazytel account shows", choices=OUTCOME_CHOICES, widget=forms.RadioSelect
    )
    username = forms.CharField(
        label="Trunk username",
        required=False,
        max_length=8,
        help_text="When it was created: CT and 6 digits, as Crazytel shows it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    note = forms.CharField(
        label="Note",
        max_length=1000,
        help_text="How you checked, for whoever reads this later.",
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[_no_hidden_characters],
    )

    def clean_username(self):
        return self.cleaned_data["username"].strip().upper()

    def clean(self):
        data = super().clean()
        if data.get("outcome") == "created":
            from .services import TRUNK_USERNAME_RE

            if not TRUNK_USERNAME_RE.match(data.get("username") or ""):
                self.add_error(
                    "username",
                    "Enter the trunk's username as Crazytel shows it: CT and 6 digits, "
                    "e.g. CT123456.",
                )
        return data
