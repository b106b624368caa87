"""A mapping's templates → the Jira `fields` of a create/edit request.

Templates are Django templates with autoescaping off (Jira gets plain text, not HTML). Missing values and
None render as empty text, never "None". Cloud v3 gets ADF descriptions, Server/Data Center v2 plain text.
"""

import json
import re

from django.template import Context, Engine, TemplateSyntaxError

from connector.errors import RenderError
from connector.jira.dialect import dialect_for

SUMMARY_MAX = 255
ELLIPSIS = "…"
FALSE_WORDS = {"", "0", "false", "no", "none", "off", "n"}
WHITESPACE = re.compile(r"\s+")
JSON_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")

engine = Engine(autoescape=False, string_if_invalid="")


__all__ = ["RenderError", "compile_template", "condition_holds", "render_fields", "render_text"]


def _blank_none(value):
    """The context with None replaced by "" (recursively), so templates never print "None"."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return {key: _blank_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_blank_none(item) for item in value]
    return value


def compile_template(template):
    try:
        return engine.from_string(template or "")
    except TemplateSyntaxError as exc:
        raise RenderError(f"Template error: {exc}") from exc


def render_text(template, context):
    """Render `template` over `context`; raises RenderError for syntax or render errors."""
    compiled = compile_template(template)
    try:
        return compiled.render(Context(_blank_none(context or {}), autoescape=False))
    except RenderError:
        raise
    except Exception as exc:  # filters can raise anything (e.g. a bad date format argument)
        raise RenderError(f"Template failed to render: {exc}") from exc


def condition_holds(mapping, context):
    """A mapping's condition: blank → always; else true unless it renders to a false-ish word."""
    if not (mapping.condition or "").strip():
        return True
    return render_text(mapping.condition, context).strip().lower() not in FALSE_WORDS


def java_length(text):
    """The length Jira checks: Java chars (UTF-16 units), so an emoji counts twice."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text, limit):
    """`text` cut to at most `limit` Java chars (never splitting a character)."""
    text = text[:limit]
    while java_length(text) > limit:
        text = text[:-1]
    return text


def truncate_summary(text):
    """One line of at most 255 characters as Jira counts them (UTF-16 units), ending in "…" when cut."""
    line = WHITESPACE.sub(" ", text or "").strip()
    if java_length(line) <= SUMMARY_MAX:
        return line
    return _fit(line, SUMMARY_MAX - len(ELLIPSIS)).rstrip() + ELLIPSIS


def sanitize_label(text):
    """A Jira label: no whitespace (runs become "-"), at most 255 characters (as Jira counts them)."""
    return _fit(WHITESPACE.sub("-", (text or "").strip()), 255)


def _value(rendered):
    """A custom field value: JSON objects, arrays, numbers and quoted strings are passed parsed."""
    stripped = rendered.strip()
    if stripped[:1] in ("{", "[", '"') or JSON_NUMBER.fullmatch(stripped):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return rendered


def _render_value(template, context):
    """Render a custom field template; dict/list templates are rendered leaf by leaf."""
    if isinstance(template, dict):
        return {key: _render_value(item, context) for key, item in template.items()}
    if isinstance(template, list):
        return [_render_value(item, context) for item in template]
    if isinstance(template, str):
        return _value(render_text(template, context))
    return template


def render_labels(labels, context):
    found = []
    for template in labels or []:
        label = sanitize_label(render_text(str(template), context))
        if label and label not in found:
            found.append(label)
    return found


def render_fields(mapping, context, site, *, reporter_id=None, assignee_id=None):
    """The Jira `fields` for POST /issue (or PUT /issue/{key}) from `mapping` over `context`."""
    dialect = dialect_for(site)
    summary = truncate_summary(render_text(mapping.summary_template, context)) or truncate_summary(
        mapping.name
    )
    fields = {
        "project": {"key": mapping.project_key.strip()},
        "issuetype": {"name": mapping.issue_type.strip()},
        "summary": summary,
    }
    description = render_text(mapping.description_template, context).strip()
    if description:
        fields["description"] = dialect.text(description)
    labels = render_labels(mapping.labels, context)
    if labels:
        fields["labels"] = labels
    parent = render_text(mapping.parent_key, context).strip()
    if parent:
        fields["parent"] = {"key": parent}
    for field_id, template in (mapping.custom_fields or {}).items():
        try:
            value = _render_value(template, context)
        except RenderError as exc:
            raise RenderError(f"{field_id}: {exc}") from exc
        if value not in ("", None, [], {}):
            fields[field_id] = value
    if reporter_id:
        fields["reporter"] = dialect.user(reporter_id)
    if assignee_id:
        fields["assignee"] = dialect.user(assignee_id)
    return fields
