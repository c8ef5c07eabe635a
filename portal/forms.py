"""Forms across the portal: the renderer (every field of every form renders through one template,
templates/forms/field.html), a cheaper per-instance copy of a form class's fields, and markup
rendered once per key."""

import copy
from collections import OrderedDict
from threading import Lock

from django.forms.fields import ChoiceField, Field
from django.forms.renderers import TemplatesSetting
from django.forms.widgets import ChoiceWidget, Widget


class PortalFormRenderer(TemplatesSetting):
    """Django's renderer over the project's templates, with the portal's field template."""

    field_template_name = "forms/field.html"


# Field and widget classes whose copy for a form instance is Django's plain one (no subfields,
# subwidgets or querysets of their own to copy).
_PLAIN_FIELD_COPIES = (Field.__deepcopy__, ChoiceField.__deepcopy__)
_PLAIN_WIDGET_COPIES = (Widget.__deepcopy__, ChoiceWidget.__deepcopy__)


def _shallow(obj):
    """copy.copy(obj) for a plain object, without the pickle protocol's round trip."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def field_copied(field: Field, memo: dict) -> Field:
    """What copy.deepcopy(field) gives a form instance, made directly: the field and its widget
    copied, with their own attrs, error messages, validators and choices lists (the choices'
    items, immutable pairs, shared, as Django's widgets already share them). A field or widget
    that copies more than that (a MultiValueField, a MultiWidget, a ModelChoiceField) is
    deep-copied as Django does."""
    widget = field.widget
    if (
        type(field).__deepcopy__ not in _PLAIN_FIELD_COPIES
        or type(widget).__deepcopy__ not in _PLAIN_WIDGET_COPIES
    ):
        return copy.deepcopy(field, memo)
    result = _shallow(field)
    result.widget = _shallow(widget)
    result.widget.attrs = widget.attrs.copy()
    if type(widget).__deepcopy__ is ChoiceWidget.__deepcopy__:
        # Already normalised: copied as they are, not through the `choices` setter again.
        result.widget._choices = copy.copy(widget._choices)
    result.error_messages = field.error_messages.copy()
    result.validators = field.validators[:]
    if type(field).__deepcopy__ is ChoiceField.__deepcopy__:
        result._choices = copy.copy(field._choices)
    return result


class FieldsCopiedLightly(dict):
    """A form class's `base_fields`, which BaseForm.__init__ deep-copies for every instance: each
    field copied by field_copied instead of through copy.deepcopy's machinery (the form of a
    create and of the form page, the audit page's filters: issue 17's profiles). Instances still
    share nothing they may change."""

    def __deepcopy__(self, memo):
        return {name: field_copied(field, memo) for name, field in self.items()}


class RenderedOnce:
    """Markup rendered once per process for each key (a process-wide LRU, thread-safe): the key
    must hold everything the markup shows."""

    SIZE = 512

    def __init__(self):
        self._html: OrderedDict[tuple, str] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple, render) -> str:
        with self._lock:
            html = self._html.get(key)
            if html is not None:
                self._html.move_to_end(key)
                return html
        html = render()
        with self._lock:
            self._html[key] = html
            while len(self._html) > self.SIZE:
                self._html.popitem(last=False)
        return html

    def clear(self) -> None:
        with self._lock:
            self._html.clear()
