"""The audit log's form for resolving an attempt whose outcome was unknown."""

import unicodedata

from django import forms

from trunks.crazytel.contract import USERNAME_HELP, USERNAME_INVALID, username_is_valid
from trunks.errors import PortalErrorsMixin


def _no_hidden_characters(value: str) -> None:
    # Like _no_control_characters, but a note may run over several lines.
    if any(unicodedata.category(ch).startswith("C") for ch in value if ch not in "\r\n"):
        raise forms.ValidationError(
            "Use visible text only: no tabs or invisible characters.", code="control_characters"
        )


class AuditResolveForm(PortalErrorsMixin, forms.Form):
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
        help_text=f"When it was created: {USERNAME_HELP}.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    trunk_id = forms.CharField(
        label="Crazytel trunk id",
        required=False,
        max_length=64,
        help_text="When it was created and Crazytel's portal shows it: its id (a UUID), so the "
        "portal can change the trunk later.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    note = forms.CharField(
        label="Note",
        max_length=1000,
        help_text="How you checked, for whoever reads this later.",
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[_no_hidden_characters],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Needed when the trunk was created: not marked "(optional)".
        self.fields["username"].hide_optional = True

    def clean_username(self):
        return self.cleaned_data["username"].strip().upper()

    def clean(self):
        data = super().clean()
        if data.get("outcome") == "created" and not username_is_valid(data.get("username") or ""):
            self.add_error("username", USERNAME_INVALID)
        return data
