"""The issue mapping form: templates must compile, and Jira must know the project, issue type and fields.

The Jira check runs when the tenant has a Jira site; when the site cannot be asked (unreachable, needs
reconnecting, no permission) the mapping is saved anyway and `form.jira_warning` says the check was not done.
"""

import time

import requests
from django import forms

from connector.errors import JiraError, RenderError, VendorError
from connector.jira import fields as field_types
from connector.jira import screens
from connector.jira.client import JiraClient
from connector.jira.keys import is_issue_key
from connector.kinds import mapping_handles
from connector.models import IssueMapping, WorklogRule
from connector.render import compile_template
from tenants.models import JiraSite

UNREACHABLE = (VendorError, requests.RequestException)


def _short_sleep(seconds):
    """Admin requests wait at most a second between retries (an operator is waiting)."""
    time.sleep(min(seconds, 1.0))


def _template_leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _template_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _template_leaves(item)
    elif isinstance(value, str):
        yield value


class IssueMappingForm(forms.ModelForm):
    class Meta:
        model = IssueMapping
        fields = [
            "tenant",
            "name",
            "event",
            "payment_kind",
            "condition",
            "project_key",
            "issue_type",
            "summary_template",
            "description_template",
            "labels",
            "parent_key",
            "custom_fields",
            "custom_field_types",
            "reporter_from",
            "assignee_from",
            "enabled",
            "order",
        ]

    jira_warning = ""
    check_against_jira = True  # off for the preview of unsaved values

    NAMES = {"summary_template": "summary", "description_template": "description", "parent_key": "parent key"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        event = self.fields.get("event")
        if (
            event is not None
        ):  # events no handler uses a mapping for are not offered (a saved one stays shown)
            current = self.instance.event if self.instance.pk else None
            event.choices = [
                (value, label)
                for value, label in event.choices
                if not value or value == current or mapping_handles(value)
            ]

    def _compile(self, field, template, name=""):
        try:
            compile_template(template, name or self.NAMES.get(field, field))
        except RenderError as exc:
            self.add_error(field, str(exc))
            return False
        return True

    def clean(self):
        data = super().clean()
        for field in ("summary_template", "description_template", "condition", "parent_key"):
            if data.get(field):
                self._compile(field, data[field])
        labels = data.get("labels")
        if labels not in (None, "") and not (
            isinstance(labels, list) and all(isinstance(label, str) for label in labels)
        ):
            self.add_error(
                "labels", 'Enter a JSON list of label templates, e.g. ["freshbooks", "{{ kind }}"].'
            )
        elif labels:
            for label in labels:
                self._compile("labels", label, f"label {label!r}")
        custom = data.get("custom_fields")
        if custom not in (None, "") and not isinstance(custom, dict):
            self.add_error(
                "custom_fields",
                'Enter a JSON object of field id → template, e.g. {"customfield_10071": "…"}.',
            )
        elif custom:
            for field_id, template in custom.items():
                for leaf in _template_leaves(template):
                    if not self._compile("custom_fields", leaf, f"custom field {field_id}"):
                        break
        self._check_types(data)
        if (
            self.check_against_jira
            and data.get("tenant")
            and data.get("project_key")
            and data.get("issue_type")
            and not self.errors
        ):
            self.check_jira(data)
        return data

    def _check_types(self, data):
        types = data.get("custom_field_types")
        if types in (None, ""):
            data["custom_field_types"] = {}
            return
        if not isinstance(types, dict):
            self.add_error(
                "custom_field_types",
                'Enter a JSON object of field id → type, e.g. {"customfield_10071": "string"}.',
            )
            return
        custom = data.get("custom_fields") if isinstance(data.get("custom_fields"), dict) else {}
        for field_id, field_type in types.items():
            if field_type not in field_types.FIELD_TYPES:
                self.add_error(
                    "custom_field_types",
                    f"{field_id}: unknown type {field_type!r}; use one of {', '.join(field_types.FIELD_TYPES)}.",
                )
            elif field_id not in custom:
                self.add_error(
                    "custom_field_types", f"{field_id} has a type but no template in the custom fields."
                )

    def check_jira(self, data):
        """Project, issue type (its id is kept for creates) and every field the mapping sends on the create
        screen (connector.jira.screens.needed_fields: the connector's own label always)."""
        if (self.instance.project_key, self.instance.issue_type) != (data["project_key"], data["issue_type"]):
            self.instance.issue_type_id = ""  # asked again below, or on the first create
        site = JiraSite.objects.filter(tenant=data["tenant"]).first()
        if site is None or not site.base_url:
            self.jira_warning = "Not checked against Jira: this tenant has no Jira site yet."
            return
        client = JiraClient(site, actor="admin", sleep=_short_sleep)
        project_key, issue_type = data["project_key"].strip(), data["issue_type"].strip()
        try:
            try:
                client.project(project_key)
            except JiraError as exc:
                if exc.status == 404:
                    self.add_error(
                        "project_key",
                        f"Jira has no project “{project_key}” (or the connection cannot see it).",
                    )
                    return
                raise
            types = client.issue_types(project_key)
            found = next((t for t in types if t.get("name") == issue_type), None)
            if found is None:
                names = ", ".join(sorted(t.get("name", "") for t in types)) or "none"
                self.add_error(
                    "issue_type",
                    f"Project {project_key} has no issue type “{issue_type}”. Available: {names}.",
                )
                return
            self.instance.issue_type_id = str(found["id"])  # creates name the type by id
            fields, shown = screens.screen_field_ids(client, project_key, found["id"])
            custom = data.get("custom_fields") or {}
            # createmeta carries each field's schema: keep it, so values get the type Jira expects.
            field_types.remember(
                site,
                {
                    f: field_types.schema_of(x)
                    for x in fields
                    if (f := x.get("fieldId") or x.get("key")) in custom
                },
            )
            missing = {f: need for f, need in screens.needed_fields(data).items() if f not in shown}
            for field in dict.fromkeys(attribute for attribute, _ in missing.values()):
                here = {f: need for f, need in missing.items() if need[0] == field}
                self.add_error(
                    field if field in self.fields else None,
                    screens.describe_missing(project_key, issue_type, here),
                )
            parent = (data.get("parent_key") or "").strip()
            if parent and "{" not in parent and client.get_issue(parent) is None:
                self.add_error(
                    "parent_key", f"Jira has no issue “{parent}” (or the connection cannot see it)."
                )
        except UNREACHABLE as exc:
            self.jira_warning = (
                f"Saved without checking the project, issue type and fields against Jira: {site} could not be "
                f"asked ({exc})."
            )


class WorklogRuleForm(forms.ModelForm):
    """A worklog rule: its fixed issue key, when given, is a Jira issue key (``FIN-12``, Data Center's
    ``FIN_OPS-7``), stored upper-case."""

    class Meta:
        model = WorklogRule
        fields = ("tenant", "match_kind", "match_value", "issue_key", "order", "enabled")

    def clean_issue_key(self):
        key = (self.cleaned_data.get("issue_key") or "").strip().upper()
        if key and not is_issue_key(key):
            raise forms.ValidationError(
                "A Jira issue key: the project key, a dash and a number, e.g. FIN-12 or FIN_OPS-7."
            )
        return key
