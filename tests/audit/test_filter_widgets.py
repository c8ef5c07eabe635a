"""The audit filter form's widgets are written in Python for speed (issue 17): the same markup as
Django's own widgets, escaping included."""

import datetime

import pytest
from django import forms

from trunks.audit.filters import QuickDateInput, QuickHiddenInput, QuickSelect, QuickTextInput

HOSTILE = "\"><script>alert(1)</script>&'"


@pytest.mark.parametrize(
    ("quick", "django_widget", "values"),
    [
        (
            QuickDateInput(attrs={"type": "date", "min": "2000-01-01", "max": "2099-12-31"}),
            forms.DateInput(attrs={"type": "date", "min": "2000-01-01", "max": "2099-12-31"}),
            [None, "2024-01-02", datetime.date(2024, 1, 2), HOSTILE],
        ),
        (
            QuickTextInput(attrs={"type": "search", "placeholder": f"a {HOSTILE}"}),
            forms.TextInput(attrs={"type": "search", "placeholder": f"a {HOSTILE}"}),
            [None, "", "CT123456", HOSTILE],
        ),
        (QuickHiddenInput(), forms.HiddenInput(), [None, "3f2c", HOSTILE]),
    ],
)
def test_quick_inputs_write_what_djangos_inputs_write(quick, django_widget, values):
    for value in values:
        for attrs in ({"id": "id_f"}, {"id": "id_f", "required": True, "disabled": False}):
            assert quick.render("f", value, attrs=attrs) == django_widget.render(
                "f", value, attrs=attrs
            )


def test_the_quick_menu_writes_djangos_options_escaped_with_the_choice_selected():
    choices = [("", "Anyone"), ("1", "ann"), ("2", HOSTILE)]
    for value in (None, "", "1", "2"):
        quick = QuickSelect(choices=choices).render("actor", value, attrs={"id": "id_actor"})
        plain = forms.Select(choices=choices).render("actor", value, attrs={"id": "id_actor"})
        assert quick == plain.replace("\n", "").replace("  ", "")
    rendered = QuickSelect(choices=choices).render("actor", "2")
    assert "<script>" not in rendered
    assert '<option value="2" selected>&quot;&gt;&lt;script&gt;' in rendered
