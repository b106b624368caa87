"""The mappings every new tenant starts with (all to the tenant's project as Task, labelled by kind), and the
worklog rule that logs time entries on the Jira issue their note names.

Templates are Django templates over the context each kind documents (connector/kinds/<kind>.py).
"""

from connector.kinds import kind_for
from connector.models import IssueMapping, WorklogRule

LINK = "\n\nOpen in FreshBooks: {{ link }}"

DEFAULT_MAPPINGS = [
    {
        "name": "Invoice created",
        "event": "invoice.create",
        "summary": "Invoice {{ invoice_number }} for {{ client_name }}: {{ amount }} {{ currency }}",
        "description": (
            "Invoice {{ invoice_number }} was created in FreshBooks.\n\n"
            "Client: {{ client_name }}{% if client.email %} ({{ client.email }}){% endif %}\n"
            "Amount: {{ amount }} {{ currency }}\nDue date: {{ due_date|default:'—' }}\nStatus: {{ status }}"
            + LINK
        ),
    },
    {
        "name": "Bill received",
        "event": "bill.create",
        "summary": "Bill {{ bill_number }} from {{ vendor_name }}: {{ amount }} {{ currency }}",
        "description": (
            "Bill {{ bill_number }} was received from {{ vendor_name }}.\n\n"
            "Amount: {{ amount }} {{ currency }}\nIssued: {{ issue_date|default:'—' }}\n"
            "Due date: {{ due_date|default:'—' }}\nCategory: {{ category_name|default:'—' }}" + LINK
        ),
    },
    *[
        {
            "name": f"Payment {kind}",
            "event": "payment.create",
            "payment_kind": kind,
            "summary": f"Payment {kind}" + " for invoice {{ invoice_number }}: {{ amount }} {{ currency }}",
            "description": (
                f"A payment was {kind}" + " for invoice {{ invoice_number }} ({{ client_name }}).\n\n"
                "Amount: {{ amount }} {{ currency }}\nType: {{ payment_type|default:'—' }}\n"
                "Date: {{ date|default:'—' }}{% if note %}\nNote: {{ note }}{% endif %}" + LINK
            ),
        }
        for kind in ("received", "failed", "refunded")
    ],
    {
        "name": "Expense created",
        "event": "expense.create",
        "summary": "Expense {{ category_name }} from {{ vendor_name }}: {{ amount }} {{ currency }}",
        "description": (
            "An expense was recorded in FreshBooks.\n\n"
            "Category: {{ category_name|default:'—' }}\nVendor: {{ vendor_name|default:'—' }}\n"
            "Amount: {{ amount }} {{ currency }}\nDate: {{ date|default:'—' }}"
            "{% if notes %}\nNotes: {{ notes }}{% endif %}" + LINK
        ),
    },
]


def create_default_mappings(tenant, project_key):
    """Create the default mappings for `tenant` (skipping any it already has for the same event/kind)."""
    created = []
    for order, spec in enumerate(DEFAULT_MAPPINGS):
        payment_kind = spec.get("payment_kind", "")
        if IssueMapping.objects.filter(
            tenant=tenant, event=spec["event"], payment_kind=payment_kind
        ).exists():
            continue
        created.append(
            IssueMapping.objects.create(
                tenant=tenant,
                name=spec["name"],
                event=spec["event"],
                payment_kind=payment_kind,
                project_key=project_key,
                issue_type="Task",
                summary_template=spec["summary"],
                description_template=spec["description"],
                labels=["freshbooks", kind_for(spec["event"]).name],
                order=order,
            )
        )
    return created


def create_default_worklog_rule(tenant):
    """The enabled "Jira issue key in the entry's note" worklog rule (time entries naming an existing issue, e.g.
    "Call about FIN-7", become worklogs on it); None when the tenant already has such a rule."""
    if WorklogRule.objects.filter(tenant=tenant, match_kind=WorklogRule.MatchKind.NOTE_KEY).exists():
        return None
    return WorklogRule.objects.create(tenant=tenant, match_kind=WorklogRule.MatchKind.NOTE_KEY, enabled=True)
