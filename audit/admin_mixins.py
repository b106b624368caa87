"""Building blocks of the audit admin: read-only pages, and sensitive fields shown only with their permission."""

import json

from django.utils.html import format_html


def pretty(value):
    if value in (None, ""):
        return "—"
    text = (
        value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    )
    return format_html("<pre style='white-space: pre-wrap; max-width: 70em'>{}</pre>", text)


SENSITIVE = "audit.view_sensitive_data"


class FitsScreen:
    """A list page that fits a 1366-px screen: without the navigation sidebar (the breadcrumbs and the index
    lead everywhere; other pages keep it), and with long unbroken values (URLs, reasons) wrapped
    (templates/admin/base_site.html, `.fits-screen`)."""

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})


class SensitiveFieldsHidden:
    """Without "view sensitive audit data" a user sees the metadata only: the `sensitive_fields` (decrypted
    payloads, records, request and response bodies) are left off every page."""

    sensitive_fields: tuple[str, ...] = ()

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if request.user.has_perm(SENSITIVE):
            return fields
        return [name for name in fields if name not in self.sensitive_fields]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.has_perm(SENSITIVE):
            return fields
        return [name for name in fields if name not in self.sensitive_fields]

    def get_fieldsets(self, request, obj=None):
        """Declared fieldsets too: the sensitive fields are taken out (and a fieldset left empty with them)."""
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.has_perm(SENSITIVE):
            return fieldsets
        kept = [
            (title, {**options, "fields": [f for f in options["fields"] if f not in self.sensitive_fields]})
            for title, options in fieldsets
        ]
        return [(title, options) for title, options in kept if options["fields"]]


class AppendOnly:
    """The audit trail is written by the connector only: operators read it, nobody edits or deletes it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
