"""Custom-field value types from Jira's field schema (not guessed from the rendered text), kept per site.

Jira describes every field with ``schema = {"type": ..., "items": ..., "custom": "<plugin key>"}`` in
``GET /rest/api/{2|3}/field`` and in the create metadata (``issue/createmeta/{project}/issuetypes/{id}``).
The site keeps ``{field id: schema}`` in ``JiraSite.field_schemas``; it is fetched when a mapped field is not
on file and fetched again when Jira refuses a value of a custom field (the field may have changed type).

A mapping may name the type itself (``IssueMapping.custom_field_types``, one of FIELD_TYPES); that wins over Jira's.
"""

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_date, parse_datetime

from connector.errors import JiraError

FIELDS = "field"
TEXTFIELD = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"
TEXTAREA = "com.atlassian.jira.plugin.system.customfieldtypes:textarea"
SINGLE_LINE_MAX = 255  # Jira's limit for single-line text custom fields (Java chars)

# The value shapes a custom field can take; "auto": a JSON object/array is sent parsed, anything else as text.
FIELD_TYPES = {
    "string": "single-line text",
    "text": "multi-line text (ADF on Cloud)",
    "number": "number",
    "date": "date (yyyy-MM-dd)",
    "datetime": "date-time (yyyy-MM-dd'T'HH:mm:ss.SSS+0000)",
    "option": 'select list: {"value": …}',
    "options": 'multi-select: [{"value": …}, …]',
    "strings": "list of strings (labels field)",
    "user": 'user: {"accountId": …} (Cloud) / {"name": …} (Server)',
    "users": "multi-user picker: a comma list of users",
    "json": "the rendered text parsed as JSON",
    "auto": "JSON object/array parsed, else text",
}


class FieldValueError(ValueError):
    """A rendered value that the field's type cannot take (e.g. "abc" for a number field)."""


def schema_of(field):
    """The schema kept for one entry of GET /field or createmeta: {"type", "items", "custom"} (blanks dropped)."""
    schema = field.get("schema") if isinstance(field, dict) else None
    if not isinstance(schema, dict):
        return {}
    return {key: schema[key] for key in ("type", "items", "custom") if schema.get(key)}


def field_type_of(schema):
    """The FIELD_TYPES name for a Jira field schema; "auto" when Jira's type is not one of the simple ones."""
    schema = schema or {}
    jira_type, items, custom = schema.get("type"), schema.get("items"), schema.get("custom", "")
    if jira_type == "string":
        return "text" if custom == TEXTAREA else "string"
    if jira_type in ("number", "date", "datetime", "option", "user"):
        return jira_type
    if jira_type == "array":
        return {"option": "options", "string": "strings", "user": "users"}.get(items, "auto")
    return "auto"


def fetch_schemas(client):
    """{custom field id: schema} of every custom field the site's Jira knows (GET /field). Raises JiraError."""
    found = client.get(FIELDS) or []
    return {
        f["id"]: schema_of(f)
        for f in found
        if isinstance(f, dict) and str(f.get("id") or "").startswith("customfield_")
    }


def remember(site, schemas):
    """Merge `schemas` ({field id: schema}) into the site's kept schemas and save them."""
    site.field_schemas = {**(site.field_schemas or {}), **schemas}
    type(site).objects.filter(pk=site.pk).update(field_schemas=site.field_schemas)


def refresh(client):
    """Ask Jira for the field list again and keep it on the site; returns the new {field id: schema}."""
    schemas = fetch_schemas(client)
    remember(client.site, schemas)
    return schemas


def field_types_for(mapping, site, client=None):
    """{custom field id: field_type} for a mapping: explicit types first, then the site's kept schemas.

    With `client`, fields not on file are looked up in Jira first (one GET /field, kept on the site).
    Without one (the Preview), unknown fields are "auto".
    """
    wanted = list((mapping.custom_fields or {}).keys())
    explicit = {k: v for k, v in (mapping.custom_field_types or {}).items() if v in FIELD_TYPES}
    kept = (site.field_schemas or {}) if site is not None else {}
    unknown = [f for f in wanted if f not in kept and f not in explicit]
    if client is not None and unknown:
        kept = {**kept, **refresh(client)}
        # A field Jira does not list is kept as schema-less ("auto"), so it is not asked about every event.
        missing = {f: {} for f in unknown if f not in kept}
        if missing:
            remember(client.site, missing)
            kept = {**kept, **missing}
    return {f: explicit.get(f) or (field_type_of(kept[f]) if f in kept else "auto") for f in wanted}


def jira_datetime(value):
    """An ISO date-time (or date) → Jira's yyyy-MM-dd'T'HH:mm:ss.SSS+0000 in UTC (naive values are UTC)."""
    text = str(value).strip()
    parsed = parse_datetime(text.replace("Z", "+00:00").replace(" ", "T", 1))
    if parsed is None:
        day = parse_date(text)
        if day is None:
            raise FieldValueError(f"{text!r} is not a date-time")
        parsed = datetime(day.year, day.month, day.day)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}+0000"


def jira_date(value):
    """An ISO date (or date-time: its date part) → yyyy-MM-dd."""
    text = str(value).strip()
    try:
        day = parse_date(text[:10])
    except ValueError:
        day = None
    if not isinstance(day, date):
        raise FieldValueError(f"{text!r} is not a date (yyyy-MM-dd)")
    return day.isoformat()


def number(text):
    """A finite JSON number from text: an int when written as one, else a float. Never inf or nan."""
    cleaned = text.strip()
    try:
        parsed = Decimal(cleaned)
    except InvalidOperation:
        parsed = None
    if parsed is None or not parsed.is_finite():
        raise FieldValueError(f"{cleaned!r} is not a number")
    if parsed == parsed.to_integral_value() and "." not in cleaned and "e" not in cleaned.lower():
        return int(parsed)
    result = float(parsed)
    if not math.isfinite(result):
        raise FieldValueError(f"{cleaned!r} is too large for a number field")
    return result


def _json(text):
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise FieldValueError(f"{text[:60]!r} is not valid JSON ({exc})") from exc
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldValueError(f"{text!r} is too large for a number")
    return value


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _structured(text):
    """A rendered JSON object or array, parsed; None for anything else."""
    if text[:1] in ("{", "["):
        try:
            return _json(text)
        except FieldValueError:
            return None
    return None


def convert(field_type, rendered, dialect):
    """Rendered text → the JSON value a field of `field_type` takes on a site of `dialect` (connector.jira.dialect);
    "" stays "" (left out). Raises FieldValueError."""
    text = rendered.strip()
    if not text:
        return ""
    if field_type == "number":
        return number(text)
    if field_type == "date":
        return jira_date(text)
    if field_type == "datetime":
        return jira_datetime(text)
    if field_type == "json":
        return _json(text)
    if len(text) > 1 and text[0] == text[-1] == '"':  # the old way to force text: a JSON string literal
        try:
            return str(json.loads(text))
        except ValueError:
            pass
    if field_type in ("string", "text"):
        return rendered
    structured = _structured(text)
    if structured is not None:  # an explicit object/array written by the mapping, e.g. {"id": "10001"}
        return structured
    if field_type == "option":
        return {"value": text}
    if field_type == "options":
        return [{"value": part.strip()} for part in text.split(",") if part.strip()]
    if field_type == "strings":
        return [part for part in text.split() if part]
    if field_type == "user":
        return dialect.user(text)
    if field_type == "users":
        return [dialect.user(part.strip()) for part in text.split(",") if part.strip()]
    return rendered


def refused(error):
    """The custom field ids Jira named in a 400 answer's per-field ``errors`` (a JiraError), as a set."""
    errors = error.field_errors() if isinstance(error, JiraError) else {}
    return {key for key in errors if str(key).startswith("customfield_")}
