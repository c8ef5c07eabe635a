"""The trunk form's fields: rendered once per process while unbound (per numbers offered and
choice), always afresh when bound, and never different from a fresh rendering."""

import pytest
from django.forms.boundfield import BoundField
from django.test import override_settings

from trunks.crazytel.parsing import VerifiedNumber
from trunks.provisioning.forms import RENDERED, TrunkCreateForm
from trunks.provisioning.numbers import VerifiedNumbers

NUMBERS = VerifiedNumbers(
    numbers=(VerifiedNumber("61298765432", "Office"), VerifiedNumber("61412345678", "Ops mobile"))
)
OTHER = VerifiedNumbers(numbers=(VerifiedNumber("61387654321", "Melbourne"),))
SHOWN = [
    "caller_id_number",
    "sms_sender",
    "description",
    "area_code",
    "enabled",
    "hide_caller_id",
    "softphone_show_balance",
    "softphone_sync_sms",
    "confirm_retry",
]


@pytest.fixture(autouse=True)
def nothing_rendered_yet():
    RENDERED.clear()
    yield
    RENDERED.clear()


@pytest.fixture
def renderings(monkeypatch):
    """How many times a field group or widget was really rendered (not reused)."""
    count = {"n": 0}
    group, widget = BoundField.as_field_group, BoundField.as_widget

    def counted(real):
        def render(self, *args, **kwargs):
            count["n"] += 1
            return real(self, *args, **kwargs)

        return render

    monkeypatch.setattr(BoundField, "as_field_group", counted(group))
    monkeypatch.setattr(BoundField, "as_widget", counted(widget))
    return count


def _fresh(name: str, **kwargs) -> str:
    """The field group as Django renders it, nothing reused (DEBUG turns the reuse off)."""
    with override_settings(DEBUG=True):
        return str(TrunkCreateForm(**kwargs)[name].as_field_group())


@pytest.mark.parametrize("name", SHOWN)
def test_an_unbound_field_is_rendered_once_and_as_a_fresh_rendering_would_be(name, renderings):
    first = str(TrunkCreateForm(numbers=NUMBERS)[name].as_field_group())
    rendered = renderings["n"]
    again = str(TrunkCreateForm(numbers=NUMBERS)[name].as_field_group())
    assert renderings["n"] == rendered  # reused, not rendered again
    assert again == first == _fresh(name, numbers=NUMBERS)


def test_the_password_input_is_reused_and_never_carries_a_value(renderings):
    first = str(TrunkCreateForm(numbers=NUMBERS)["password"])
    rendered = renderings["n"]
    assert str(TrunkCreateForm(numbers=NUMBERS)["password"]) == first
    assert renderings["n"] == rendered
    assert 'type="password"' in first and "value=" not in first


def test_the_numbers_offered_and_the_number_chosen_are_part_of_what_is_reused():
    office = str(TrunkCreateForm(numbers=NUMBERS)["caller_id_number"].as_field_group())
    melbourne = str(TrunkCreateForm(numbers=OTHER)["caller_id_number"].as_field_group())
    assert "02 9876 5432 — Office" in office and "Melbourne" not in office
    assert "03 8765 4321 — Melbourne" in melbourne and "Office" not in melbourne
    chosen = TrunkCreateForm(numbers=NUMBERS, initial={"caller_id_number": "61412345678"})
    html = str(chosen["caller_id_number"].as_field_group())
    assert '<option value="61412345678" selected>' in html
    assert html == _fresh(
        "caller_id_number", numbers=NUMBERS, initial={"caller_id_number": "61412345678"}
    )
    assert '<option value="61412345678" selected>' not in office


def test_a_bound_form_renders_its_values_and_errors_afresh(renderings):
    str(TrunkCreateForm(numbers=NUMBERS)["description"].as_field_group())
    data = {"caller_id_number": "61299999999", "description": "Front desk"}
    bound = TrunkCreateForm(data, numbers=NUMBERS)
    bound.is_valid()
    rendered = renderings["n"]
    caller = str(bound["caller_id_number"].as_field_group())
    description = str(bound["description"].as_field_group())
    assert renderings["n"] > rendered
    assert "Choose one of this account&#x27;s verified numbers." in caller
    assert 'aria-invalid="true"' in caller
    assert 'value="Front desk"' in description


def test_the_number_choices_worked_out_once_are_each_forms_own_and_the_setters_own():
    """The choices kept per list of numbers are what the fields' choices setters would store, and
    one form changing its lists changes no other form's."""
    first, second = TrunkCreateForm(numbers=NUMBERS), TrunkCreateForm(numbers=NUMBERS)
    expected = TrunkCreateForm(numbers=NUMBERS)
    caller_id = expected.fields["caller_id_number"]
    caller_id.choices = [
        ("", "Choose a number…"),
        ("61298765432", "02 9876 5432 — Office"),
        ("61412345678", "0412 345 678 — Ops mobile"),
    ]
    expected.fields["sms_sender"].widget.choices = [
        ("", "None"),
        ("61412345678", "0412 345 678 — Ops mobile"),
    ]
    for form in (first, second):
        assert form.fields["caller_id_number"].choices == caller_id.choices
        assert form.fields["caller_id_number"].widget.choices == caller_id.widget.choices
        assert (
            form.fields["sms_sender"].widget.choices == expected.fields["sms_sender"].widget.choices
        )
    first.fields["caller_id_number"].choices.append(("x", "x"))
    first.fields["sms_sender"].widget.choices.clear()
    assert ("x", "x") not in TrunkCreateForm(numbers=NUMBERS).fields["caller_id_number"].choices
    assert second.fields["sms_sender"].widget.choices
    assert TrunkCreateForm(numbers=OTHER).fields["caller_id_number"].choices[1][0] == "61387654321"
