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


def test_the_quick_menu_written_once_marks_each_renders_own_choice():
    # The options are written once per list of choices and reused: a choice shown on one page
    # must not stay selected on the next, and a menu with a repeated value marks only the first,
    # as Django's Select does.
    people = [("", "Anyone"), *((str(pk), f"user{pk}") for pk in range(1, 300))]
    for value in ("7", "", "250", None, "7"):
        quick = QuickSelect(choices=people).render("actor", value)
        plain = forms.Select(choices=people).render("actor", value)
        assert quick == plain.replace("\n", "").replace("  ", "")
        assert quick.count(" selected") == 1
    repeated = [("1", "a"), ("1", "b")]
    plain = forms.Select(choices=repeated).render("x", "1")
    assert QuickSelect(choices=repeated).render("x", "1") == plain.replace("\n", "").replace(
        "  ", ""
    )


def test_filter_forms_built_from_one_class_share_no_choices_or_errors():
    from trunks.access import TenantAccess
    from trunks.audit.filters import AuditRecordFilter

    def filterset(data, tenants, actors):
        return AuditRecordFilter(data=data, queryset=None, tenants=tenants, actors=actors)

    alpha = TenantAccess(1, "Alpha", "alpha", "manager")
    beta = TenantAccess(2, "Beta", "beta", "manager")
    first = filterset({"actor": "7", "status": "failed"}, [alpha], [(7, "ann")])
    second = filterset({"actor": "7", "status": "nonsense"}, [beta], [(8, "bob")])
    assert first.form.is_valid() and first.cleaned("actor") == "7"
    # Ann is not among the second reader's people, and the status is not one: both refused there.
    assert not second.form.is_valid()
    assert set(second.form.errors) == {"actor", "status"}
    assert first.form.is_valid() and not first.form.errors
    assert list(second.form.fields["tenant"].choices) == [("", "All tenants"), ("2", "Beta")]
    assert 'value="failed" selected' in str(first.form["status"])
    assert "selected" not in str(second.form["status"]).replace('value="" selected', "")
    # Each filter set has its own filters (copied one level deep), and a method filter (the
    # search, the dates, the job) calls its own filter set's method.
    for name, own in first.filters.items():
        assert own is not second.filters[name]
        assert own.parent is first and second.filters[name].parent is second
    for name in ("q", "date_from", "date_to", "job", "sort"):
        assert first.filters[name].filter.f is first.filters[name]


@pytest.mark.parametrize(
    "value", ["", "CT123456", "30 Nov 2026 10:00:00 AEDT", "—", None, 42, HOSTILE, "a&b", "it's"]
)
def test_the_log_rows_escape_a_value_exactly_as_django_does(value):
    from django.utils.html import escape

    from trunks.audit.views import _text

    assert _text(value) == escape(value)


def test_the_menus_of_one_list_of_choices_check_and_write_as_djangos_choice_field_does():
    from trunks.audit.filters import MenuChoiceField

    people = [(1, "ann"), (2, HOSTILE), (10, "bob")]
    ours = MenuChoiceField(choices=people, empty_label="Anyone", widget=QuickSelect, required=False)
    plain = forms.ChoiceField(choices=[("", "Anyone"), *people], required=False)
    for value in ("", "1", "2", "10", "3", "01", HOSTILE):
        assert ours.valid_value(value) == (value != "" and plain.valid_value(value))
    assert ours.clean("10") == plain.clean("10") == "10"
    with pytest.raises(forms.ValidationError):
        ours.clean("3")
    ours.menu_set([(5, "eve")])
    assert ours.valid_value("5") and not ours.valid_value("1")
    written = ours.widget.render("actor", "5")
    assert written == forms.Select(choices=[("", "Anyone"), ("5", "eve")]).render(
        "actor", "5"
    ).replace("\n", "").replace("  ", "")
