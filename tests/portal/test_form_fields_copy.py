"""Form fields copied per instance by portal.forms.FieldsCopiedLightly: what copy.deepcopy gave
(the same markup, nothing an instance may change shared), at a fraction of the cost."""

import copy

import pytest
from django import forms

from portal.forms import FieldsCopiedLightly
from trunks.audit.filters import AuditRecordFilter
from trunks.models import Membership
from trunks.provisioning.forms import TrunkCreateForm


class _Plain(forms.Form):
    name = forms.CharField(max_length=10, widget=forms.TextInput(attrs={"class": "x"}))
    colour = forms.ChoiceField(choices=[("r", "Red"), ("Cool", [("b", "Blue"), ("g", "Green")])])
    many = forms.MultipleChoiceField(choices=[("1", "One")], widget=forms.CheckboxSelectMultiple)
    flag = forms.BooleanField(required=False)
    when = forms.SplitDateTimeField(required=False)  # a MultiValueField: deep-copied as before
    member = forms.ModelChoiceField(queryset=Membership.objects.all(), required=False)


class _Light(_Plain):
    pass


_Light.base_fields = FieldsCopiedLightly(_Light.base_fields)


def _own_parts(field):
    parts = [field, field.widget, field.widget.attrs, field.error_messages, field.validators]
    if hasattr(field, "_choices"):
        parts.append(field._choices)
    if hasattr(field.widget, "choices"):
        parts.append(field.widget.choices)
    return parts


@pytest.mark.django_db
@pytest.mark.parametrize(
    "form_class", [_Light, TrunkCreateForm, AuditRecordFilter._form_class()], ids=str
)
def test_instances_share_nothing_they_may_change(form_class):
    assert isinstance(form_class.base_fields, FieldsCopiedLightly)
    one, two = form_class(), form_class()
    for name, field in form_class.base_fields.items():
        for a, b, c in zip(
            _own_parts(field),
            _own_parts(one.fields[name]),
            _own_parts(two.fields[name]),
            strict=True,
        ):
            if not isinstance(a, tuple):  # an immutable one may be shared, as deepcopy shares it
                assert a is not b and b is not c and a is not c, (name, a)
            if isinstance(a, (forms.Field, forms.Widget)):
                assert type(a) is type(b) is type(c) and b.__dict__.keys() == c.__dict__.keys()
            else:
                assert b == c  # the same contents (an instance may set its own, as the form's do)


def test_a_changed_instance_leaves_the_class_and_other_instances_alone():
    one, two = _Light(), _Light()
    one.fields["colour"].choices = [("z", "Zed")]
    one.fields["name"].widget.attrs["placeholder"] = "changed"
    one.fields["name"].error_messages["required"] = "changed"
    one.fields["name"].validators.append(lambda value: None)
    assert [c[0] for c in two.fields["colour"].choices] == ["r", "Cool"]
    assert "placeholder" not in two.fields["name"].widget.attrs
    assert two.fields["name"].error_messages == _Light.base_fields["name"].error_messages
    assert len(two.fields["name"].validators) == len(_Light.base_fields["name"].validators)


def test_fields_that_copy_more_are_deep_copied_as_before():
    one = _Light()
    assert one.fields["when"].fields[0] is not _Light.base_fields["when"].fields[0]
    assert one.fields["when"].widget.widgets[0] is not _Light.base_fields["when"].widget.widgets[0]
    assert one.fields["member"].queryset is not _Light.base_fields["member"].queryset


@pytest.mark.django_db
def test_the_markup_is_deepcopys():
    data = {"name": "ab", "colour": "g", "many": ["1"], "flag": "on"}
    assert str(_Light()) == str(_Plain())
    assert str(_Light(data)) == str(_Plain(data))
    assert copy.deepcopy(_Plain.base_fields).keys() == copy.deepcopy(_Light.base_fields).keys()
