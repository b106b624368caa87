"""Jira project and issue keys, as Jira allows them: a project key starts with a letter, then letters, digits
or underscores (Data Center allows ``FIN_OPS``; Cloud's default pattern is letters and digits), at most 32
characters in our columns; an issue key is ``<project key>-<number>``, e.g. ``FIN-7`` or ``FIN_OPS-7``.
Every place that reads keys (note rules, webhooks, admin forms, commands) uses these."""

import re

PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
# In free text (a time entry's note): not inside a longer word, e.g. not the "OPS-7" of "FIN_OPS-7".
ISSUE_KEY_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_])[A-Z][A-Z0-9_]{0,31}-[0-9]+(?![A-Za-z0-9_])")
ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,31}-[0-9]{1,18}")


def is_project_key(text):
    return bool(PROJECT_KEY.fullmatch(text or ""))


def is_issue_key(text):
    return bool(ISSUE_KEY.fullmatch(text or ""))


def project_of(issue_key):
    """The project key of an issue key: ``FIN_OPS`` for ``FIN_OPS-7``."""
    return issue_key.rsplit("-", 1)[0]
