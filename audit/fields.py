"""Encrypted JSON on top of fernet_fields, and key-cache handling for rotation."""

import json

from django import forms
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from fernet_fields import EncryptedField, EncryptedTextField


class EncryptedJSONField(EncryptedTextField):
    """A JSON document stored Fernet-encrypted (payloads, fetched records, request/response bodies)."""

    def get_prep_value(self, value):
        if value is None:
            return None
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)

    def to_python(self, value):  # also called by from_db_value with the decrypted text
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})


def encrypted_fields():
    """Every (model, [field names]) pair that holds Fernet-encrypted data."""
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if names:
            yield model, names


def reset_key_caches(**kwargs):
    """Forget the keys each encrypted field cached, so a changed FERNET_KEYS takes effect."""
    if kwargs.get("setting") not in (None, "FERNET_KEYS", "SECRET_KEY"):
        return
    for model, names in encrypted_fields():
        for name in names:
            field = model._meta.get_field(name)
            for attr in ("keys", "fernet_keys", "fernet"):
                field.__dict__.pop(attr, None)
