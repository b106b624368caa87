"""Admin support for encrypted secrets: never rendered back, shown as set/not set, replaced on demand."""

from django import forms
from django.contrib import admin

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
