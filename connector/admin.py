import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from audit.admin_mixins import FitsScreen
from config.queueing import enqueue
from connector import queue_admin  # noqa: F401 - re-registers django-q2's task admin with permissions
from connector.forms import IssueMappingForm, WorklogRuleForm
from connector.jira.adf import to_text
from connector.kinds import COMMON_DOCS, CONTEXT_DOCS
from connector.models import IssueMapping, JiraUserMatch, Link, ReconcileState, WorklogRule
from connector.preview import preview
from connector.schedules import RECONCILE
from tenants.models import Tenant
from tenants.secret_fields import VendorCheckedAdmin


@admin.register(IssueMapping)
class IssueMappingAdmin(VendorCheckedAdmin, admin.ModelAdmin):
    list_display = (
        "name",
        "tenant",
        "event",
        "payment_kind",
        "project_key",
        "issue_type",
        "enabled",
        "order",
    )
    list_filter = ("enabled", "event", "tenant")
    list_editable = ("enabled", "order")
    search_fields = ("name", "event", "project_key", "tenant__name")
    list_select_related = ("tenant",)
    form = IssueMappingForm  # templates compile; project, issue type and fields checked against Jira
    help_texts = {
        "payment_kind": "Only for payment events: which payments this mapping is for (see docs/mappings.md, "
        "“Payment kind”, for how received, failed and refunded are told apart). Leave “Any” for other events.",
        "summary_template": "One line; cut to 255 characters with an ellipsis. Context keys are listed below.",
        "description_template": "Plain text: blank lines make paragraphs, lines starting with “- ” bullet "
        "lists, URLs links (Jira Cloud gets ADF, Server plain text).",
        "labels": 'A JSON list of label templates, e.g. ["freshbooks", "{{ kind }}"]; spaces become dashes.',
        "custom_fields": 'A JSON object of Jira field id → template, e.g. {"customfield_10071": '
        '"{{ invoice_number }}"}; field ids are checked against Jira on save, and each value is sent in the JSON '
        "type Jira's schema gives the field (text stays text, numbers become numbers, dates yyyy-MM-dd).",
        "custom_field_types": "Optional: a type per custom field that overrides Jira's schema, e.g. "
        '{"customfield_10071": "string"}. Types: string, text, number, date, datetime, option, options, '
        "strings, user, users, json, auto.",
        "reporter_from": "Set the reporter to the Jira user matched to the FreshBooks client or vendor "
        "(Jira user matches, else a Jira user search by email); left unset when no user matches.",
        "assignee_from": "Same as reporter, for the assignee.",
        "order": "Lower runs first when several mappings match an event.",
    }

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in self.help_texts:
            field.help_text = self.help_texts[db_field.name]
        if db_field.name == "summary_template":
            field.widget.attrs.update(rows=2)
        return field

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if getattr(form, "jira_warning", ""):
            messages.warning(request, form.jira_warning)

    # "Preview" (C2): the mapping rendered against a sample record, as the exact Jira request body.
    change_form_template = "admin/connector/issuemapping/change_form.html"

    def get_urls(self):
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="connector_issuemapping_preview",
        )
        return [preview, *super().get_urls()]

    def draft_key(self, mapping):
        return f"issue-mapping-draft-{mapping.pk}"

    def get_form(self, request, obj=None, change=False, **kwargs):
        """With ?draft=1 (Preview's "Back to the mapping"), the form shows the values typed before Preview,
        kept in the session, instead of the saved ones (nothing is saved until Save)."""
        form = super().get_form(request, obj, change, **kwargs)
        draft = request.session.get(self.draft_key(obj)) if obj and request.GET.get("draft") else None
        if request.method != "GET" or not draft:
            return form

        class DraftForm(form):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, initial={**draft, **kwargs.pop("initial", {})}, **kwargs)

        return DraftForm

    def preview_view(self, request, object_id):
        mapping = self.get_object(request, object_id)  # None for a missing or malformed id: a 404, not a 500
        if mapping is None:
            raise Http404("No issue mapping with that id.")
        if not self.has_view_permission(request, mapping):
            raise PermissionDenied
        unsaved, form_errors = request.method == "POST", {}
        if unsaved:  # the change form's values, rendered without saving them
            form_class = self.get_form(request, mapping, change=True)
            form_class.check_against_jira = False
            form = form_class(request.POST, instance=mapping)
            request.session[self.draft_key(mapping)] = {
                name: (name in request.POST)
                if isinstance(field, forms.BooleanField)
                else request.POST.get(name)
                for name, field in form.fields.items()
            }
            if not form.is_valid():
                form_errors = {
                    form.fields[f].label if f in form.fields else f: e for f, e in form.errors.items()
                }
        result = (
            preview(mapping)
            if not form_errors
            else {"body": None, "error": "", "kind": mapping.event.split(".")[0]}
        )
        body = json.dumps(result["body"], indent=2, ensure_ascii=False) if result["body"] else ""
        fields = (result["body"] or {}).get("fields", {})
        description = fields.get("description", "")
        rendered = {
            "summary": fields.get("summary", ""),
            "description": to_text(description) if isinstance(description, dict) else description,
            "labels": ", ".join(fields.get("labels", [])),
        }
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {mapping.name}",
            "opts": self.model._meta,
            "original": mapping,
            "result": result,
            "body_json": body,
            "rendered": rendered,
            "unsaved": unsaved,
            "form_errors": form_errors,
            "back": reverse("admin:connector_issuemapping_change", args=[mapping.pk])
            + ("?draft=1" if unsaved else ""),
        }
        return TemplateResponse(request, "admin/connector/issuemapping/preview.html", context)

    def render_change_form(self, request, context, *args, **kwargs):
        context["context_docs"] = {"common": COMMON_DOCS, **CONTEXT_DOCS}
        mapping = context.get("original")
        context["mapping_kind"] = mapping.event.split(".", 1)[0] if mapping and mapping.event else ""
        drafted = mapping and request.method == "GET" and request.GET.get("draft")
        if drafted and request.session.get(self.draft_key(mapping)):
            messages.info(request, "The values typed before Preview are back in the form: not saved yet.")
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(WorklogRule)
class WorklogRuleAdmin(admin.ModelAdmin):
    form = WorklogRuleForm  # the fixed issue key is a Jira key (FIN-12, FIN_OPS-7)
    list_display = ("__str__", "tenant", "match_kind", "match_value", "issue_key", "order", "enabled")
    list_filter = ("match_kind", "enabled", "tenant")
    list_editable = ("order", "enabled")
    search_fields = ("match_value", "issue_key", "tenant__name")
    list_select_related = ("tenant",)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        help_texts = {
            "match_value": "The FreshBooks project, client or service id; leave empty for “Jira issue key in "
            "the entry's note”.",
            "issue_key": "The Jira issue the worklog goes to, e.g. FIN-12; leave empty for “Jira issue key in "
            "the entry's note” (the key found in the note is used, once checked to exist).",
            "order": "Rules are tried from the lowest order; the first match wins.",
        }
        if field is not None and db_field.name in help_texts:
            field.help_text = help_texts[db_field.name]
        return field


@admin.register(JiraUserMatch)
class JiraUserMatchAdmin(admin.ModelAdmin):
    list_display = ("kind", "freshbooks_id", "jira_account_id", "tenant", "note")
    list_filter = ("kind", "tenant")
    search_fields = ("freshbooks_id", "jira_account_id", "note")


@admin.register(Link)
class LinkAdmin(admin.ModelAdmin):
    list_display = (
        "dedupe_key",
        "tenant",
        "purpose",
        "object_type",
        "object_id",
        "jira_issue_key",
        "state",
        "updated_at",
    )
    list_filter = ("state", "purpose", "object_type", "tenant")
    search_fields = ("dedupe_key", "object_id", "jira_issue_key", "jira_issue_id")

    # The ledger writes links; an operator may only correct a state (e.g. mark a link deleted in Jira).
    readonly_fields = (
        "dedupe_key",
        "tenant",
        "purpose",
        "object_type",
        "object_id",
        "jira_issue_id",
        "jira_issue_key",
        "jira_worklog_id",
        "event",
        "created_at",
        "updated_at",
    )
    list_select_related = ("tenant",)

    def has_add_permission(self, request):  # a hand-made link would block the real write
        return False

    def has_delete_permission(self, request, obj=None):  # deleting one would let a replay write twice
        return False


@admin.register(ReconcileState)
class ReconcileStateAdmin(FitsScreen, admin.ModelAdmin):
    """Each tenant's reconcile: watermark, last pass and its result; interval and "Reconcile now"."""

    list_display = (
        "tenant",
        "enabled",
        "interval_minutes",
        "watermark",
        "last_started_at",
        "last_finished_at",
        "last_result",
        "last_detail",
        "last_actor",
    )
    list_editable = ("enabled", "interval_minutes")
    list_filter = ("last_result", "enabled")
    list_select_related = ("tenant",)
    readonly_fields = (
        "tenant",
        "watermark",
        "last_started_at",
        "last_finished_at",
        "last_result",
        "last_detail",
        "last_actor",
    )
    actions = ["reconcile_now"]

    def has_add_permission(self, request):  # one per tenant, made by the connector
        return False

    def has_delete_permission(self, request, obj=None):  # it would only come back, without its watermark
        return False

    def has_reconcile_permission(self, request):
        """Who may run "Reconcile now" (operators: see docs/connecting.md, "Permissions")."""
        return request.user.has_perm("connector.reconcile_now")

    def changelist_view(self, request, extra_context=None):
        # Every connected tenant has a row to act on, also before its first scheduled pass.
        missing = Tenant.objects.filter(freshbooks_accounts__isnull=False, reconcile__isnull=True).distinct()
        ReconcileState.objects.bulk_create([ReconcileState(tenant=tenant) for tenant in missing])
        return super().changelist_view(request, extra_context)

    @admin.action(description="Reconcile now", permissions=["reconcile"])
    def reconcile_now(self, request, queryset):
        """Queue one pass per selected tenant for the worker (its result shows here when done)."""
        actor = f"admin:{request.user.get_username()}"
        for state in queryset.select_related("tenant"):
            enqueue(RECONCILE, state.tenant_id, actor=actor)
            self.message_user(request, f"Queued a reconcile of {state.tenant}.", messages.SUCCESS)
