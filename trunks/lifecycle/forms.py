"""The forms of a trunk's page and of the list's filters. The change forms are the create form
(trunks.provisioning.forms.TrunkCreateForm) with only the fields each action changes: the same
labels, number selects, password rules, one-time token and checks, from the same definitions."""

from django import forms

from trunks.audit.filters import QuickSelect
from trunks.provisioning.fields import StrictBooleanField
from trunks.provisioning.forms import TrunkCreateForm

from .selectors import STATE_CHOICES

_NOT_CHANGE_FIELDS = ("retry_of", "confirm_retry")


class TrunkChangeForm(TrunkCreateForm):
    """A change: the create form's token and checks, plus the trunk's version when rendered."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    keep: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name in _NOT_CHANGE_FIELDS or (
                name in TrunkCreateForm.UPSTREAM_FIELDS and name not in self.keep
            ):
                del self.fields[name]

    def upstream_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.keep if name in self.cleaned_data}


class TrunkSettingsForm(TrunkChangeForm):
    keep = (
        "caller_id_number",
        "sms_sender",
        "description",
        "area_code",
        "hide_caller_id",
        "softphone_show_balance",
        "softphone_sync_sms",
    )


class TrunkPasswordForm(TrunkChangeForm):
    keep = ("password",)
    # Set when re-sending an unconfirmed password change.
    send_again = StrictBooleanField(widget=forms.HiddenInput)


class TrunkEnabledForm(TrunkChangeForm):
    keep = ("enabled",)
    confirm = StrictBooleanField(label="I understand: its calls stop at once")

    def clean(self):
        cleaned = super().clean()
        if "enabled" in cleaned and not cleaned["enabled"] and not cleaned.get("confirm"):
            self.add_error("confirm", "Confirm the suspension: calls on this trunk stop at once.")
        return cleaned


class TrunkSendAgainForm(TrunkChangeForm):
    """Send an unconfirmed change's requested settings again (harmless if they applied)."""


class TrunkResolveForm(forms.Form):
    outcome = forms.ChoiceField(
        label="What Crazytel's portal shows",
        choices=[("applied", "The change was applied"), ("not_applied", "It was not applied")],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label="Note", max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="How you checked, for whoever reads this later.",
    )  # fmt: skip


class TrunkFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        help_text="Username, description, or a caller ID as dialled",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "CT123456, 02 9876 5432…"}),
    )
    # The menus are rendered in Python (QuickSelect): a superuser's "Created by" lists everyone.
    state = forms.ChoiceField(
        label="State", required=False, choices=STATE_CHOICES, widget=QuickSelect
    )
    creator = forms.TypedChoiceField(
        label="Created by", required=False, coerce=int, empty_value=None, widget=QuickSelect
    )
    tenant = forms.TypedChoiceField(
        label="Tenant", required=False, coerce=int, empty_value=None, widget=QuickSelect
    )

    def __init__(self, *args, tenants=(), creators=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = [("", "All my tenants")] + [(t.id, t.name) for t in tenants]
        self.fields["creator"].choices = [("", "Anyone"), *creators]
