"""Admin support for encrypted secrets: never rendered back, shown as set/not set, replaced on demand."""

from django import forms

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
