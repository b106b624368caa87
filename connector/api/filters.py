"""Query filters of the operator API's lists (django-filter). Bad values answer 400 with DRF's field errors."""

from datetime import UTC

import django_filters as filters
from django import forms

from audit.models import Event
from connector.kinds import KINDS
from tenants.models import Tenant


class AwareDateTimeField(forms.DateTimeField):
    """ISO 8601 (a naive time is UTC); refused when it cannot be a database time (e.g. year 1 at +14:00)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a time between the years 1 and 9999 (UTC).") from None


class AwareDateTimeFilter(filters.DateTimeFilter):
    field_class = AwareDateTimeField


class EventFilter(filters.FilterSet):
    tenant = filters.CharFilter(field_name="tenant__slug", help_text="The tenant's slug.")
    status = filters.MultipleChoiceFilter(choices=Event.Status.choices, help_text="Repeat for several.")
    source = filters.MultipleChoiceFilter(choices=Event.Source.choices, help_text="Repeat for several.")
    kind = filters.ChoiceFilter(
        choices=[(name, name) for name in KINDS], method="filter_kind", help_text="FreshBooks resource kind."
    )
    name = filters.CharFilter(help_text="The event name, e.g. invoice.create.")
    object_id = filters.CharFilter(
        help_text="The FreshBooks record's id (the Jira issue's id for Jira events)."
    )
    jira_key = filters.CharFilter(help_text="The Jira issue key, e.g. FIN-12.")
    failure_reason = filters.CharFilter(help_text="A failure's reason, as grouped on the Failed events page.")
    received_after = AwareDateTimeFilter(
        field_name="received_at",
        lookup_expr="gte",
        help_text="Received at or after (ISO 8601; naive is UTC).",
    )
    received_before = AwareDateTimeFilter(
        field_name="received_at", lookup_expr="lt", help_text="Received before (ISO 8601; naive is UTC)."
    )

    class Meta:
        model = Event
        fields = []

    def filter_kind(self, queryset, name, value):
        return queryset.filter(name__startswith=f"{value}.")


class TenantFilter(filters.FilterSet):
    active = filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        coerce=lambda value: value == "true",
        help_text="Only active (true) or inactive (false) tenants.",
    )

    class Meta:
        model = Tenant
        fields = []
