"""Form fields the trunk form needs: a checkbox that refuses nonsense, visible single-line text."""

import unicodedata

from django import forms

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


def no_control_characters(value: str) -> None:
    # Unicode categories C*: control characters, line breaks, invisible format characters (bidi
    # overrides, zero-width joiners), private-use and unassigned code points.
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise forms.ValidationError(
            "Use a single line of visible text: no line breaks, tabs or invisible characters.",
            code="control_characters",
        )
