"""A mapping's templates → the Jira `fields` of a create/edit request.

Templates are Django templates with autoescaping off (Jira gets plain text, not HTML). Missing values and
None render as empty text, never "None". Cloud v3 gets ADF descriptions, Server/Data Center v2 plain text.
"""

import functools
import re

from django.template import Context, Engine, TemplateSyntaxError

from connector.errors import RenderError
from connector.jira import fields as field_types
from connector.jira.dialect import dialect_for

SUMMARY_MAX = 255
LABEL_MAX = 255
TEXT_MAX = 32767  # description, worklog comment, multi-line text fields (Java chars)
ELLIPSIS = "…"
TRUNCATED = "(truncated)"
FALSE_WORDS = {"", "0", "false", "no", "none", "off", "n"}
WHITESPACE = re.compile(r"\s+")

# debug=True: template errors carry the line they are on (exc.template_debug), named in RenderError messages.
engine = Engine(autoescape=False, string_if_invalid="", debug=True)


__all__ = ["RenderError", "compile_template", "condition_holds", "render_fields", "render_text"]


class _Blanked(dict):
    """A context already passed through _blank_none (render_fields blanks it once for all its templates)."""


def _blank_none(value):
    """The context with None replaced by "" (recursively), so templates never print "None"."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return {key: _blank_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_blank_none(item) for item in value]
    return value


def _where(name, exc):
    """'the summary template, line 2 ({% if %})' from a Django template error raised with debug on."""
    debug = getattr(exc, "template_debug", None) or {}
    where = f"the {name} template"
    if debug.get("line"):
        where += f", line {debug['line']}"
        if debug.get("during"):
            where += f" ({debug['during'].strip()[:60]})"
    return where


@functools.lru_cache(maxsize=1024)
def _compiled(template):
    """A mapping's templates are few and rendered for every event: each is compiled once per process."""
    return engine.from_string(template)


def compile_template(template, name="mapping"):
    """The compiled template; RenderError naming the template (`name`: summary, description…) and line."""
    try:
        return _compiled(template or "")
    except TemplateSyntaxError as exc:
        raise RenderError(f"Template error in {_where(name, exc)}: {exc}") from exc


def render_text(template, context, name="mapping"):
    """Render `template` over `context`; raises RenderError (naming `name` and the line) for syntax or render
    errors."""
    compiled = compile_template(template, name)
    values = dict(context) if isinstance(context, _Blanked) else _blank_none(context or {})
    try:
        return compiled.render(Context(values, autoescape=False))
    except RenderError:
        raise
    except Exception as exc:  # filters can raise anything (e.g. a bad date format argument)
        raise RenderError(f"Template failed to render: {_where(name, exc)}: {exc}") from exc


def condition_holds(mapping, context):
    """A mapping's condition: blank → always; else true unless it renders to a false-ish word."""
    if not (mapping.condition or "").strip():
        return True
    return render_text(mapping.condition, context, "condition").strip().lower() not in FALSE_WORDS


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


def fit_text(text, limit, notes=None, what="text", marker="\n\n" + TRUNCATED):
    """`text` within `limit` Java chars; when cut it ends in `marker` and a note naming `what` is added."""
    if java_length(text) <= limit:
        return text
    if notes is not None:
        notes.append(f"{what} cut to Jira's limit of {limit:,} characters (was {java_length(text):,})")
    return _fit(text, limit - java_length(marker)).rstrip() + marker


def sanitize_label(text, notes=None):
    """A Jira label: no whitespace (runs become "-"), at most 255 characters (as Jira counts them);
    a longer one ends in "…(truncated)" and a note is added to `notes`."""
    label = WHITESPACE.sub("-", (text or "").strip())
    return fit_text(label, LABEL_MAX, notes, f"label {label[:20]}…", ELLIPSIS + TRUNCATED)


def _render_value(field_id, template, context, field_type, dialect, notes):
    """A custom field's value: dict/list templates rendered leaf by leaf (leaves stay text), a text template
    converted to the JSON type of the field's `field_type` (connector.jira.fields) and fitted to its length limit."""
    if isinstance(template, dict):
        return {
            key: _render_value(field_id, item, context, "auto", dialect, None)
            for key, item in template.items()
        }
    if isinstance(template, list):
        items = [_render_value(field_id, item, context, "auto", dialect, None) for item in template]
        return [
            {"value": item} if field_type == "options" and isinstance(item, str) else item for item in items
        ]
    if not isinstance(template, str):
        return template
    rendered = render_text(template, context, f"custom field {field_id}")
    try:
        value = field_types.convert(field_type, rendered, dialect)
    except field_types.FieldValueError as exc:
        raise RenderError(
            f"{field_id}: {field_types.FIELD_TYPES.get(field_type, field_type)} field: {exc}"
        ) from exc
    if field_type == "string" and value:
        return fit_text(
            WHITESPACE.sub(" ", value).strip(),
            field_types.SINGLE_LINE_MAX,
            notes,
            field_id,
            ELLIPSIS + TRUNCATED,
        )
    if field_type == "text" and value.strip():
        value = fit_text(value.strip(), TEXT_MAX, notes, field_id)
        return dialect.text(value)
    return value


def render_labels(labels, context, notes=None):
    found = []
    for template in labels or []:
        label = sanitize_label(render_text(str(template), context, f"label {template!r}"), notes)
        if label and label not in found:
            found.append(label)
    return found


def render_fields(mapping, context, site, *, reporter_id=None, assignee_id=None, types=None, notes=None):
    """The Jira `fields` for POST /issue (or PUT /issue/{key}) from `mapping` over `context`.

    `types`: {custom field id: field type (FIELD_TYPES)} (connector.jira.fields.field_types_for; missing → "auto"). Texts over Jira's
    limits are cut with a "(truncated)" marker and a line is added to `notes` (a list) for each cut.
    """
    dialect = dialect_for(site)
    context = _Blanked(_blank_none(context or {}))
    summary = truncate_summary(render_text(mapping.summary_template, context, "summary")) or truncate_summary(
        mapping.name
    )
    fields = {
        "project": {"key": mapping.project_key.strip()},
        # By id from the project's create metadata (connector.jira.screens): a name may resolve to the type of
        # another project. The name only in a Preview of a mapping not yet checked against Jira.
        "issuetype": {"id": type_id}
        if (type_id := getattr(mapping, "issue_type_id", ""))
        else {"name": mapping.issue_type.strip()},
        "summary": summary,
    }
    description = fit_text(
        render_text(mapping.description_template, context, "description").strip(),
        TEXT_MAX,
        notes,
        "description",
    )
    if description:
        fields["description"] = dialect.text(description)
    labels = render_labels(mapping.labels, context, notes)
    if labels:
        fields["labels"] = labels
    parent = render_text(mapping.parent_key, context, "parent key").strip()
    if parent:
        fields["parent"] = {"key": parent}
    for field_id, template in (mapping.custom_fields or {}).items():
        value = _render_value(
            field_id, template, context, (types or {}).get(field_id, "auto"), dialect, notes
        )
        if value not in ("", None, [], {}):
            fields[field_id] = value
    if reporter_id:
        fields["reporter"] = dialect.user(reporter_id)
    if assignee_id:
        fields["assignee"] = dialect.user(assignee_id)
    return fields
