"""The trunk form: Crazytel's POST /sip-trunks/ fields (labels, help and defaults from
trunks.crazytel.contract), checked against the tenant's verified numbers and password rules, plus
the form's own checks: its one-time token, the numbers being known, the attempt it retries."""

from functools import lru_cache

from django import forms
from django.conf import settings
from django.forms.boundfield import BoundField
from django.utils.choices import normalize_choices

from portal.forms import FieldsCopiedLightly, RenderedOnce
from trunks.crazytel.contract import (
    TRUNK_FIELD,
    TRUNK_FIELD_NAMES,
    number_is_mobile_sender,
)
from trunks.models import AuditRecord, Tenant
from trunks.numbers import number_display

from .fields import StrictBooleanField, no_control_characters
from .numbers import VerifiedNumbers
from .passwords import PASSWORD_MAX_LENGTH, password_failures
from .selectors import trunk_attempt_unknown_get
from .tokens import submission_token_nonce

AREA_CODE_CHOICES = [
    ("", "None (no geographic routing)"),
    ("02", "02 — NSW / ACT"),
    ("03", "03 — VIC / TAS"),
    ("07", "07 — QLD"),
    ("08", "08 — SA / WA / NT"),
]
DESCRIPTION_MAX_LENGTH = 100


# Fields of an unbound trunk form, per numbers offered. An unbound field's HTML depends only on its
# class's definition, its choices (the tenant's verified numbers) and its initial value: the same
# form view renders the same field markup every time, so it is rendered once and reused. Bound
# forms (values, errors) always render afresh, and so does everything under DEBUG, where templates
# may change while serving.
RENDERED = RenderedOnce()


class _RenderedOnceBoundField(BoundField):
    """A trunk form field whose unbound rendering comes from RENDERED."""

    def _key(self, how: str) -> tuple | None:
        if self.form.is_bound or settings.DEBUG:
            return None
        choices = getattr(self.field, "choices", None)
        if choices is None:
            choices = getattr(self.field.widget, "choices", ())
        return (
            type(self.form),
            self.form.auto_id,
            self.form.prefix,
            self.name,
            how,
            repr(list(choices)),
            repr(self.value()),
        )

    def as_field_group(self):
        key = self._key("group")
        if key is None:
            return super().as_field_group()
        return RENDERED.get(key, super().as_field_group)

    def as_widget(self, widget=None, attrs=None, only_initial=False):
        key = None if (widget or attrs or only_initial) else self._key("widget")
        if key is None:
            return super().as_widget(widget, attrs, only_initial)
        return RENDERED.get(key, super().as_widget)


def _spec(name: str, **kwargs) -> dict:
    """A form field's label, help text and initial value, from the contract's field spec."""
    spec = TRUNK_FIELD[name]
    found = {"label": spec.label, "help_text": spec.help_text}
    if spec.type is bool:
        found["initial"] = spec.default
    return found | kwargs


@lru_cache(maxsize=256)
def _number_choices(numbers: tuple[tuple[str, str], ...]) -> tuple[tuple, tuple]:
    """The caller ID choices and the SMS sender choices (mobiles only) for these (number, label)
    pairs, normalised as the fields' choices setters normalise them: worked out once per process
    for each list of numbers (the form is built for every form view and every create)."""
    caller_ids = [("", "Choose a number…")] + [
        (number, number_display(number, label)) for number, label in numbers
    ]
    sms_senders = [("", "None")] + [
        (number, number_display(number, label))
        for number, label in numbers
        if number_is_mobile_sender(number)
    ]
    return tuple(normalize_choices(caller_ids)), tuple(normalize_choices(sms_senders))


def _flag(name: str, **kwargs) -> StrictBooleanField:
    return StrictBooleanField(**_spec(name, **kwargs))


class TrunkCreateForm(forms.Form):
    """The fields Crazytel's POST /sip-trunks/ takes, named as the API names them.

    Built with the tenant's verified numbers; a number outside them, or an SMS sender that is not
    a 614 mobile, never reaches Crazytel. Bound to a POST it also takes the `user` and `tenant`:
    an expired or foreign token, numbers that could not be checked, or a retry of an attempt that
    is not the tenant's unknown outcome make it invalid.
    """

    submission_token = forms.CharField(widget=forms.HiddenInput, max_length=400)
    # Set when retrying an attempt whose outcome was unknown (its audit record's uuid).
    retry_of = forms.UUIDField(widget=forms.HiddenInput, required=False)
    confirm_retry = StrictBooleanField(
        label="I have checked the Crazytel account: this trunk was not created, so try again",
    )

    caller_id_number = forms.ChoiceField(
        **_spec("caller_id_number"),
        error_messages={
            "required": "Choose the caller ID number.",
            "invalid_choice": "Choose one of this account's verified numbers.",
        },
    )
    sms_sender = forms.CharField(
        **_spec("sms_sender"), required=False, max_length=32, widget=forms.Select
    )
    password = forms.CharField(
        **_spec("password"),
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
        error_messages={"required": "Enter a password for the trunk, or use Generate."},
    )
    description = forms.CharField(
        **_spec("description"),
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[no_control_characters],
    )
    area_code = forms.ChoiceField(
        **_spec("area_code"),
        required=False,
        choices=AREA_CODE_CHOICES,
        error_messages={"invalid_choice": "Choose one of Australia's area codes, or none."},
    )
    enabled = _flag("enabled")
    hide_caller_id = _flag("hide_caller_id")
    softphone_show_balance = _flag("softphone_show_balance")
    softphone_sync_sms = _flag("softphone_sync_sms")

    UPSTREAM_FIELDS = TRUNK_FIELD_NAMES
    bound_field_class = _RenderedOnceBoundField

    def __init__(
        self,
        *args,
        numbers: VerifiedNumbers | None = None,
        user=None,
        tenant: Tenant | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.verified = numbers if numbers is not None else VerifiedNumbers()
        self.numbers = self.verified.numbers
        self.user = user
        self.tenant = tenant
        # Set by a valid bound form: the token's unique part, the attempt being retried.
        self.submission_nonce: str | None = None
        self.retry_of_record: AuditRecord | None = None
        self.retry_of_refused = False
        self.fields["hide_caller_id"].warning = True
        caller_ids, sms_senders = _number_choices(tuple((n.number, n.label) for n in self.numbers))
        # What the choices setters store (normalised choices), each instance its own lists.
        caller_id = self.fields["caller_id_number"]
        caller_id._choices, caller_id.widget._choices = list(caller_ids), list(caller_ids)
        self.fields["sms_sender"].widget._choices = list(sms_senders)

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
        if not self.verified.contains(value):
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
        if self.user is not None:
            self._clean_submission(cleaned)
        return cleaned

    def _clean_submission(self, cleaned: dict) -> None:
        """The checks of a submission (not of its fields): the token is this user's and current,
        the numbers were checked against Crazytel, the attempt retried is the tenant's unknown one."""
        self.submission_nonce = submission_token_nonce(
            user=self.user, token=self.data.get("submission_token", "")
        )
        if self.submission_nonce is None:
            self.add_error(
                None,
                "This form has expired or was changed, so nothing was sent. Check the details and "
                "submit again.",
            )
        if not self.verified.ok:
            self.add_error(
                None,
                "Nothing was sent: the numbers could not be checked against Crazytel. "
                + self.verified.error,
            )
        if not self.errors and cleaned.get("retry_of"):
            self.retry_of_record = trunk_attempt_unknown_get(
                user=self.user, tenant=self.tenant, uuid=cleaned["retry_of"]
            )
            if self.retry_of_record is None:
                self.retry_of_refused = True
                self.add_error(
                    None, "The attempt to retry is not one of this tenant's unknown outcomes."
                )

    def upstream_data(self) -> dict:
        """The cleaned values Crazytel receives (the contract builds the exact JSON)."""
        return {name: self.cleaned_data[name] for name in self.UPSTREAM_FIELDS}


TrunkCreateForm.base_fields = FieldsCopiedLightly(TrunkCreateForm.base_fields)
