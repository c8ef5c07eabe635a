"""The audit log's filters (django-filter): tenant, actor, status, kind, date range, free text, sort."""

import re
from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import AuditKind, AuditRecord, AuditStatus, Tenant

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


def _local_day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class AuditFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


class AuditRecordFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(
        queryset=Tenant.objects.none(), empty_label="All tenants", label="Tenant"
    )
    actor = django_filters.ModelChoiceFilter(
        queryset=get_user_model().objects.none(), empty_label="Anyone", label="Who"
    )
    status = django_filters.ChoiceFilter(
        choices=AuditStatus.choices, empty_label="Any status", label="Status"
    )
    kind = django_filters.ChoiceFilter(
        choices=AuditKind.choices, empty_label="Any kind", label="Kind"
    )
    date_from = django_filters.DateFilter(
        method="filter_date_from",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = django_filters.DateFilter(
        method="filter_date_to",
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    q = django_filters.CharFilter(
        method="filter_text",
        label="Search",
        max_length=100,
        # Shorter text cannot use the trigram indexes and would scan the whole log.
        min_length=3,
        error_messages={"min_length": "Type at least 3 characters to search."},
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Trunk username, description or caller ID",
                "autocomplete": "off",
            }
        ),
    )
    sort = django_filters.ChoiceFilter(
        choices=SORT_CHOICES, method="filter_nothing", empty_label=None, label="Order"
    )

    class Meta:
        model = AuditRecord
        fields = ["tenant", "actor", "status", "kind"]
        form = AuditFilterForm

    def __init__(self, *args, tenants: QuerySet[Tenant], user, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["tenant"].queryset = tenants
        User = get_user_model()
        if user.is_superuser:
            actors = User.objects.all()
        else:
            actors = User.objects.filter(memberships__tenant__in=tenants).distinct()
        self.filters["actor"].queryset = actors.order_by("username")

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

    def filter_nothing(self, queryset, name, value):
        return queryset  # ordering is applied by the selector, which pages by it
