from django.contrib import admin, messages

from connector.forms import IssueMappingForm
from connector.models import IssueMapping, JiraUserMatch, Link, WorklogRule


@admin.register(IssueMapping)
class IssueMappingAdmin(admin.ModelAdmin):
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

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if getattr(form, "jira_warning", ""):
            messages.warning(request, form.jira_warning)

    # "Preview" (C2): the mapping rendered against a sample record, as the exact Jira request body.
    change_form_template = "admin/connector/issuemapping/change_form.html"

    def get_urls(self):
        from django.urls import path

        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="connector_issuemapping_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request, object_id):
        import json

        from django.core.exceptions import PermissionDenied
        from django.shortcuts import get_object_or_404
        from django.template.response import TemplateResponse

        from connector.preview import preview

        mapping = get_object_or_404(IssueMapping, pk=object_id)
        if not self.has_view_permission(request, mapping):
            raise PermissionDenied
        result = preview(mapping)
        body = json.dumps(result["body"], indent=2, ensure_ascii=False) if result["body"] else ""
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {mapping.name}",
            "opts": self.model._meta,
            "original": mapping,
            "result": result,
            "body_json": body,
        }
        return TemplateResponse(request, "admin/connector/issuemapping/preview.html", context)

    def render_change_form(self, request, context, *args, **kwargs):
        from connector.context import COMMON_DOCS, CONTEXT_DOCS

        context["context_docs"] = {"common": COMMON_DOCS, **CONTEXT_DOCS}
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(WorklogRule)
class WorklogRuleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "tenant", "match_kind", "match_value", "issue_key", "order", "enabled")
    list_filter = ("match_kind", "enabled", "tenant")
    list_editable = ("order", "enabled")
    search_fields = ("match_value", "issue_key", "tenant__name")
    list_select_related = ("tenant",)


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
    readonly_fields = ("created_at", "updated_at")
    raw_id_fields = ("event",)
    list_select_related = ("tenant",)
