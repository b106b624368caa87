from django.contrib import admin

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
