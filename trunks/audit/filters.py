"""The audit log's filters (django-filter): tenant, actor, status, kind, date range, free text, sort."""

import copy
import functools
import html
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.core.signals import setting_changed
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe

from portal.forms import FieldsCopiedLightly, RenderedOnce
from trunks.models import AuditKind, AuditRecord, AuditStatus

# Shorter text cannot use the trigram indexes and would scan the whole log.
SEARCH_MIN_LENGTH = 3

SORT_CHOICES = [("newest", "Newest first"), ("oldest", "Oldest first")]

# A search that looks like a phone number: digits with optional +, spaces, brackets and dashes.
_PHONE_LIKE = re.compile(r"^\+?[\d\s()-]{3,}$")


def _stored_number_form(text: str) -> str | None:
    """What a typed number looks like in the log (Crazytel's 61… form): "0412 345" → "61412345"."""
    if not _PHONE_LIKE.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return digits
    if digits.startswith("0"):
        return "61" + digits[1:]
    return digits


# The dates a filter accepts. The calendar's edges overflow (9999-12-31 + 1 day; 0001-01-01 in a
# time zone east of UTC on SQLite), and no audit record is older than the portal or 75 years ahead.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)
DATE_RANGE_MESSAGE = f"Pick a date between {EARLIEST_DATE:%-d %b %Y} and {LATEST_DATE:%-d %b %Y}."


def _date_filter(*, label: str, method: str) -> django_filters.DateFilter:
    """A day of the audit log, within EARLIEST_DATE..LATEST_DATE (a clear error outside)."""
    return django_filters.DateFilter(
        method=method,
        label=label,
        validators=[
            MinValueValidator(EARLIEST_DATE, message=DATE_RANGE_MESSAGE),
            MaxValueValidator(LATEST_DATE, message=DATE_RANGE_MESSAGE),
        ],
        widget=QuickDateInput(
            attrs={"type": "date", "min": EARLIEST_DATE.isoformat(), "max": LATEST_DATE.isoformat()}
        ),
    )


def _local_day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class QuickSelect(forms.Select):
    """A <select> rendered in Python: Django's template per <option> costs ~25 µs each, and the
    "Who" menu of a superuser lists every person. Same markup as forms.Select. The options are
    plain f-strings over html.escape (what Django's escape() uses): format_html's per-value
    conditional_escape made this menu a fifth of the audit page's time (issue 17's profile). The
    options of a list of choices are written once per process (_options_html, or the field's
    Menu) and the chosen one marked in the copy: escaping a superuser's "Who" menu on every page
    was 6% of the page."""

    menu: "Menu | None" = None

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        if self.menu is not None:
            options = self.menu.html
        else:
            options = _options_html(tuple((str(key), str(label)) for key, label in self.choices))
        for chosen in {str(v) for v in self.format_value(value)}:
            # As forms.Select: the first option with the value is the selected one.
            tag = f'<option value="{_escape(chosen)}"'
            options = options.replace(f"{tag}>", f"{tag} selected>", 1)
        return mark_safe(  # noqa: S308 (every key and label escaped by _escape)
            f'<select name="{_escape(name)}"{_attrs(final)}>{options}</select>'
        )


@functools.lru_cache(maxsize=64)
def _options_html(choices: tuple[tuple[str, str], ...]) -> str:
    """The <option>s of `choices` ((value, label) pairs), none selected, every value escaped. A
    label's `<` is escaped, so `<option value="…">` only ever starts an option."""
    return "".join(
        f'<option value="{_escape(key)}">{_escape(label)}</option>' for key, label in choices
    )


@dataclass(frozen=True)
class Menu:
    """A menu's options as a form needs them, worked out once per process for each list of
    choices (menu_for): the (value, label) pairs, the empty option first; the values one may
    choose; the <option>s. Checking and writing a superuser's "Who" menu (every person) through
    Django's ChoiceField walked its choices four times a page (issue 17's profile)."""

    options: tuple[tuple[str, str], ...]
    values: frozenset[str]
    html: str


@functools.lru_cache(maxsize=128)
def menu_for(choices: tuple[tuple[Any, Any], ...], empty_label: str | None) -> Menu:
    options = tuple((str(key), str(label)) for key, label in choices)
    if empty_label is not None:
        options = (("", empty_label), *options)
    return Menu(
        options=options,
        values=frozenset(key for key, _ in options if key != ""),
        html=_options_html(options),
    )


class MenuChoiceField(forms.ChoiceField):
    """A ChoiceField over a Menu: the same choices, checks and markup (with QuickSelect), without
    normalising, copying or walking the choices on every form. `menu_set` gives an instance its
    own choices (the reader's tenants and people)."""

    def __init__(self, *, choices=(), empty_label: str | None = "---------", **kwargs):
        self.empty_label = empty_label
        super().__init__(**kwargs)
        self.menu_set(choices() if callable(choices) else choices)

    def menu_set(self, choices) -> None:
        self.menu = menu_for(tuple(choices), self.empty_label)
        # Already (value, label) strings: the field's and the widget's setters would normalise
        # them again (the widget's walked a superuser's "Who" menu on every page: issue 17).
        self._choices = self.widget._choices = self.menu.options
        self.widget.menu = self.menu

    def valid_value(self, value) -> bool:
        return str(value) in self.menu.values


class MenuChoiceFilter(django_filters.ChoiceFilter):
    field_class = MenuChoiceField


def _escape(value) -> str:
    return html.escape(str(value))


def _attrs(attrs: dict) -> str:
    """Attributes as Django's attrs.html writes them: in order, True as a bare name, False left out."""
    return "".join(
        f" {_escape(name)}" if value is True else f' {_escape(name)}="{_escape(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


class QuickInputMixin:
    """An <input> rendered in Python, the same markup as Django's input.html template (whose
    rendering, four times a page, was most of what the menus left of the filter form's time)."""

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        shown = self.format_value(value)
        value_attr = "" if shown is None else f' value="{_escape(shown)}"'
        return mark_safe(  # noqa: S308 (the name, the value and every attribute escaped)
            f'<input type="{_escape(self.input_type)}" name="{_escape(name)}"{value_attr}'
            f"{_attrs(final)}>"
        )


class QuickDateInput(QuickInputMixin, forms.DateInput):
    pass


class QuickTextInput(QuickInputMixin, forms.TextInput):
    pass


class QuickHiddenInput(QuickInputMixin, forms.HiddenInput):
    pass


class AuditFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


class _FiltersCopiedOneLevel(OrderedDict):
    """A FilterSet's class filters, copied for each instance one level deep instead of deep:
    django-filter's __init__ then sets the instance's `model` and `parent` on its own copies, and
    their fields, widgets and validators (built into the form class once per process) are not
    copied again on every page (a tenth of the audit page's CPU in issue 17's profile)."""

    def __deepcopy__(self, memo):
        copies = OrderedDict()
        for name, original in self.items():
            copied = copy.copy(original)
            copied.__dict__.pop("_field", None)
            # A method filter calls its method through the filter it was bound to: bind a new
            # one to the copy, so it reaches this instance's `parent`.
            copied.method = original.method
            copies[name] = copied
        return copies


class AuditRecordFilter(django_filters.FilterSet):
    # Plain choices (ids) rather than model choices: the reader's tenants and people are read
    # once per request (tenants) or from a short-lived cache (people), not queried again to
    # build and validate the menus.
    tenant = MenuChoiceFilter(
        field_name="tenant_id",
        choices=[],
        empty_label="All tenants",
        label="Tenant",
        widget=QuickSelect,
    )
    actor = MenuChoiceFilter(
        field_name="actor_id", choices=[], empty_label="Anyone", label="Who", widget=QuickSelect
    )
    # Fixed menus: their Menu is shared by every form (a Form deep-copies its fields on every page).
    status = MenuChoiceFilter(
        choices=AuditStatus.choices,
        empty_label="Any status",
        label="Status",
        widget=QuickSelect,
    )
    kind = MenuChoiceFilter(
        choices=AuditKind.choices, empty_label="Any kind", label="Kind", widget=QuickSelect
    )
    date_from = _date_filter(label="From", method="filter_date_from")
    date_to = _date_filter(label="To", method="filter_date_to")
    q = django_filters.CharFilter(
        method="filter_text",
        label="Search",
        max_length=100,
        min_length=SEARCH_MIN_LENGTH,
        error_messages={
            "min_length": f"Type at least {SEARCH_MIN_LENGTH} characters to search. "
            "The records below are not filtered by it."
        },
        widget=QuickTextInput(
            attrs={
                "type": "search",
                "placeholder": "Trunk username, description or caller ID",
                "autocomplete": "off",
            }
        ),
    )
    # A bulk job (issue 14): its own records and each of its rows' attempts. Set from the job's page.
    job = django_filters.UUIDFilter(method="filter_job", label="Bulk job", widget=QuickHiddenInput)
    sort = MenuChoiceFilter(
        choices=SORT_CHOICES,
        method="filter_nothing",
        empty_label=None,
        label="Order",
        widget=QuickSelect,
    )

    class Meta:
        model = AuditRecord
        fields = ["tenant", "actor", "status", "kind"]
        form = AuditFilterForm

    def __init__(self, *args, tenants: list, actors: list[tuple[int, str]], **kwargs):
        """`tenants`: the reader's tenants (selectors.TenantAccess); `actors`: (id, username)."""
        self._tenants = {str(t.id): t for t in tenants}
        self._menus = {
            "tenant": [(str(t.id), t.name) for t in tenants],
            "actor": actors,
        }
        super().__init__(*args, **kwargs)

    @classmethod
    def _form_class(cls):
        """The filter form's class, built once per process from the filters' fields (as
        django-filter's get_form_class builds it on every page): a Form copies its class's
        fields for each instance, so instances share nothing."""
        if "_built_form_class" not in cls.__dict__:
            fields = {name: copy.deepcopy(f).field for name, f in cls.base_filters.items()}
            form_class = type(f"{cls.__name__}Form", (cls._meta.form,), fields)
            form_class.base_fields = FieldsCopiedLightly(form_class.base_fields)
            cls._built_form_class = form_class
        return cls._built_form_class

    def get_form_class(self):
        return self._form_class()

    @property
    def form(self):
        if not hasattr(self, "_form"):
            form = super().form
            # The reader's tenants and people go on this form's own fields, not on the filters
            # before the form is built: a Form deep-copies its fields, choices and all, and a
            # superuser's "Who" menu lists everyone (issue 17's profile).
            for name, choices in self._menus.items():
                form.fields[name].menu_set(choices)
        return self._form

    @property
    def chosen_tenant(self):
        """The tenant chosen in the filter (a selectors.TenantAccess), or None."""
        return self._tenants.get(self.cleaned("tenant") or "")

    def cleaned(self, name: str):
        """A filter's valid value (None when absent or invalid)."""
        self.form.is_valid()
        return getattr(self.form, "cleaned_data", {}).get(name) or None

    @property
    def sort_order(self) -> str:
        value = self.cleaned("sort")
        return value if value in dict(SORT_CHOICES) else "newest"

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(started_at__gte=_local_day_start(value))

    def filter_date_to(self, queryset, name, value):
        # Inclusive: up to the end of that day, in the portal's time zone.
        return queryset.filter(started_at__lt=_local_day_start(value + timedelta(days=1)))

    def filter_text(self, queryset, name, value):
        text = value.strip()
        if not text:
            return queryset
        match = (
            Q(trunk_username__icontains=text)
            | Q(description__icontains=text)
            | Q(caller_id_number__icontains=text)
        )
        number = _stored_number_form(text)
        if number and number != text:
            match |= Q(caller_id_number__icontains=number)
        return queryset.filter(match)

    def filter_job(self, queryset, name, value):
        # A row's attempts carry the job in their token (trunks.bulk.services.row_token): the row
        # links only its latest, so an earlier attempt answered 429 is found by its token.
        return queryset.filter(
            Q(bulk_row__job__uuid=value)
            | Q(submission_token__startswith=f"bulk:{value}:")
            | Q(bulk_job__uuid=value)
            | Q(related__bulk_job__uuid=value)
        )

    def filter_nothing(self, queryset, name, value):
        return queryset  # ordering is applied by the selector, which pages by it


AuditRecordFilter.base_filters = _FiltersCopiedOneLevel(AuditRecordFilter.base_filters)


# The filter form's fields as the list page shows them, per values and menus (filter_fields_html).
FIELDS_HTML = RenderedOnce()
setting_changed.connect(lambda **kwargs: FIELDS_HTML.clear(), weak=False)


def filter_fields_html(form) -> SafeString:
    """The filter form's fields (templates/audit/_filter_fields.html) for the list page. Their
    markup depends only on the form's class, its values and its two menus of the reader's tenants
    and people: a form without errors is rendered once per process for those (issue 17: the
    fields were a sixth of the page). A form with errors (marked on its fields), and everything
    under DEBUG, is rendered afresh."""
    if settings.DEBUG or form.errors:
        return _fields_render(form)
    data = form.data
    key = (
        type(form),
        translation.get_language(),
        tuple(
            (name, tuple(data.getlist(name)) if hasattr(data, "getlist") else data.get(name))
            for name in form.fields
        ),
        form.fields["tenant"].menu,
        form.fields["actor"].menu,
    )
    # Kept as the template engine returned it (safe markup).
    return FIELDS_HTML.get(key, lambda: _fields_render(form))


def _fields_render(form) -> SafeString:
    return render_to_string("audit/_filter_fields.html", {"form": form})
