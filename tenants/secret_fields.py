"""Admin support for encrypted secrets (never rendered back, shown as set/not set, replaced on demand) and for
forms checked against a vendor (checked outside any database transaction)."""

from django import forms
from django.contrib import admin
from django.db import transaction

MASK = "••••••••"


def masked(value):
    return f"{MASK} (set)" if value else "— (not set)"


class SecretFieldsForm(forms.ModelForm):
    """A ModelForm whose `secret_fields` are write-only: blank keeps the stored value, text replaces it."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            current = getattr(self.instance, name, "")
            self.fields[name] = forms.CharField(
                required=False,
                strip=True,
                label=self.fields[name].label,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=f"{masked(current)}. Type a new value to replace it; leave blank to keep it.",
            )
            self.initial[name] = ""

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            if name in self.fields and not cleaned.get(name):
                cleaned[name] = getattr(self.instance, name, "") or ""
        return cleaned


def masked_display(name, label):
    """An admin display callable showing the secret field `name` as set / not set, never its value."""

    @admin.display(description=label)
    def show(self, obj):
        return masked(getattr(obj, name, ""))

    return show


class SecretFieldsAdmin:
    """ModelAdmin mixin: users who may not change an object see its `secret_fields` masked.

    Django renders the fields of a view-only change page with their stored values; here each secret field is
    replaced by its `<name>_masked` display (declare it with `masked_display`). Users who may change the object
    get the SecretFieldsForm's write-only "replace" input instead.
    """

    secret_fields: tuple[str, ...] = ()

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fields
        return [f"{name}_masked" if name in self.secret_fields else name for name in fields]


class VendorCheckedAdmin:
    """ModelAdmin mixin for a form whose `clean` asks a vendor (the Jira site's probe, a mapping's createmeta):
    Django runs a POSTed change form inside one transaction, which would hold the database (on SQLite the whole
    file) while the vendor answers (connector.transport.guard_transaction refuses that). Here the form is
    validated outside any transaction; only the saving is atomic."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
