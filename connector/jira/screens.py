"""The create-screen contract: what the connector sends in a create, checked against the project's create
metadata, and what it does when Jira refuses an optional field anyway.

Jira accepts only the fields on the create screen of a project and issue type (and on the edit screen for an
edit): any other is refused with ``400 {"errors": {"<field>": "Field '<field>' cannot be set. It is not on the
appropriate screen, or unknown."}}`` (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/). So:

- `needed_fields(mapping)` lists every field a mapping's creates carry: summary, the connector's own `mlc-`
  label (always: connector.ledger), description, parent, custom fields, reporter and assignee when set;
- the issue type is sent by its id from the project's create metadata (`issue_type_id`), never by name: a
  team-managed project has its own "Task", and the name resolves to another project's type;
- `create_issue` / `update_issue` send the fields; when Jira refuses optional fields as not on the screen, the
  write is made once more without them and a note says so (the issue still carries the connector's
  `ml-connector` property, connector.ledger).
"""

import json

from connector.errors import ConnectorError, JiraError

CREATEMETA_MAX = 200  # Jira's largest createmeta page
REQUIRED = ("project", "issuetype", "summary")  # never dropped: without them there is no issue
SCREEN_WORDS = ("cannot be set", "not on the appropriate screen")
NAMES = {
    "summary": "Summary",
    "labels": "Labels",
    "description": "Description",
    "parent": "Parent",
    "reporter": "Reporter",
    "assignee": "Assignee",
}


def needed_fields(mapping):
    """{Jira field id: (mapping attribute, why)} of every field the mapping's creates send. `mapping` is an
    IssueMapping or a dict of its form's cleaned data."""
    get = (
        mapping.get
        if isinstance(mapping, dict)
        else lambda name, default=None: getattr(mapping, name, default)
    )
    needed = {
        "summary": ("summary_template", "the issue summary"),
        "labels": ("labels", "the connector's own mlc- label, sent with every issue to find it again"),
    }
    if (get("description_template") or "").strip():
        needed["description"] = ("description_template", "the description template")
    if (get("parent_key") or "").strip():
        needed["parent"] = ("parent_key", "the parent key")
    for field_id in get("custom_fields") or {}:
        needed[field_id] = ("custom_fields", "a custom field of the mapping")
    for role in ("reporter", "assignee"):
        if get(f"{role}_from"):
            needed[role] = (f"{role}_from", f"the {role} the mapping sets")
    return needed


def find_issue_type(client, project_key, name):
    """The issue type named `name` creatable in the project ({"id", "name", …} from createmeta), or None.
    Raises JiraError."""
    return next((t for t in client.issue_types(project_key) if t.get("name") == name), None)


def screen_field_ids(client, project_key, issue_type_id):
    """(createmeta fields, the set of field ids on the create screen). Raises JiraError."""
    fields = client.create_fields(project_key, issue_type_id)
    return fields, {f.get("fieldId") or f.get("key") for f in fields}


def missing_on_screen(client, project_key, issue_type_id, mapping):
    """{field id: (mapping attribute, why)} of the fields the mapping sends that the create screen lacks."""
    _, shown = screen_field_ids(client, project_key, issue_type_id)
    return {f: need for f, need in needed_fields(mapping).items() if f not in shown}


def describe_missing(project_key, issue_type, missing):
    """One line for an operator: which fields are missing from which screen, and why the connector sends them."""
    parts = [f"{NAMES.get(f, f)} ({why})" for f, (_, why) in missing.items()]
    return f"Not on the create screen of {project_key} / {issue_type}: {'; '.join(parts)}. Add them to the screen."


def issue_type_id(client, mapping):
    """The id of the mapping's issue type in its project (kept on the mapping once asked). Raises JiraError, or
    ConnectorError when the project has no creatable type of that name."""
    if mapping.issue_type_id:
        return mapping.issue_type_id
    project_key, name = mapping.project_key.strip(), mapping.issue_type.strip()
    found = find_issue_type(client, project_key, name)
    if found is None:
        raise ConnectorError(f"Project {project_key} has no issue type “{name}” that can be created")
    mapping.issue_type_id = str(found["id"])
    type(mapping).objects.filter(pk=mapping.pk).update(issue_type_id=mapping.issue_type_id)
    return mapping.issue_type_id


def issue_type_refused(error):
    """True when a 400 from Jira refuses the issue type (e.g. "issuetype: Specify a valid issue type")."""
    if getattr(error, "status", None) != 400:
        return False
    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, dict) and "issuetype" in errors


def forget_issue_type(client, mapping):
    """Drop a kept issue type id and ask Jira again; True when Jira now names another id (worth sending once
    more), False when nothing was kept or the id is the same. Raises JiraError or ConnectorError."""
    stale = mapping.issue_type_id
    if not stale:
        return False
    mapping.issue_type_id = ""
    return issue_type_id(client, mapping) != stale


def not_on_screen(error):
    """The field ids a 400 from Jira refuses as not on the screen, when every field error is of that kind (else
    an empty set: the request has other problems)."""
    if getattr(error, "status", None) != 400:
        return set()
    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict) or not errors:
        return set()
    refused = {f for f, message in errors.items() if any(w in str(message).lower() for w in SCREEN_WORDS)}
    return refused if refused == set(errors) else set()


def _without_refused(write, fields, notes, what):
    """`write(fields)`; when Jira refuses optional fields as not on the screen, once more without them."""
    try:
        return write(fields)
    except JiraError as exc:
        refused = not_on_screen(exc)
        if not refused or refused & set(REQUIRED):
            raise
        kept = {name: value for name, value in fields.items() if name not in refused}
        result = write(kept)
        if notes is not None:
            names = ", ".join(NAMES.get(f, f) for f in sorted(refused))
            notes.append(f"{what} without {names}: Jira refused it as not on the screen")
        return result


def create_issue(client, fields, properties, notes=None):
    """POST /issue with `fields` and `properties`; optional fields Jira refuses as not on the create screen are
    left out on a second try (noted in `notes`). Returns Jira's {id, key}. Raises JiraError."""
    return _without_refused(
        lambda sent: client.create_issue(sent, properties=properties), fields, notes, "issue created"
    )


def update_issue(client, key, fields, notes=None):
    """PUT /issue/{key}; optional fields Jira refuses as not on the edit screen are left out on a second try."""
    return _without_refused(lambda sent: client.update_issue(key, sent), fields, notes, f"{key} updated")
