"""The JQL the fake Jira understands: `field = "x"` and `field in (a, b)` clauses joined by AND, an optional
ORDER BY (ignored). Enough for the connector's searches (labels, issue properties, keys); anything else is
refused the way Jira refuses a query it cannot parse."""

import re

CLAUSE = re.compile(
    r"""\s*(?P<field>[\w.]+)\s*(?:(?P<eq>=)\s*(?P<value>"[^"]*"|[^\s()]+)|(?P<in>in)\s*\((?P<values>[^)]*)\))\s*""",
    re.IGNORECASE,
)


def _unquote(value):
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def parse_jql(jql):
    """[(field, {values})] for `a = "x" AND b in (...) ORDER BY ...`; ValueError when unsupported."""
    where = re.split(r"\border\s+by\b", jql, flags=re.IGNORECASE)[0].strip()
    if not where:
        raise ValueError("The JQL query must be bounded (add a condition).")
    clauses = []
    for part in re.split(r"\s+and\s+", where, flags=re.IGNORECASE):
        found = CLAUSE.fullmatch(part)
        if not found:
            raise ValueError(f"Error in the JQL Query: unsupported clause '{part.strip()}'.")
        if found["eq"]:
            values = {_unquote(found["value"])}
        else:
            values = {_unquote(v) for v in found["values"].split(",") if v.strip()}
        clauses.append((found["field"].lower(), values))
    return clauses
