"""Bulk create through the idempotency ledger: up to 50 issues in one `POST /rest/api/{3|2}/issue/bulk`, each
still written at most once (connector.ledger's protocol, per element).

1. Each object's link is claimed first. A link already created (or deleted, rolled back) is not written again;
   one in doubt, or claimed by someone else, is left to the one-by-one path (its label search decides).
2. The claimed links are locked (SELECT … FOR UPDATE) for the duration of the one request; each element carries
   the deterministic label and the ml-connector entity property, like a single create.
3. Per element: created → its link is created with Jira's id and key; an element Jira refused (its
   `failedElementNumber`) → its link is released and its event gets Jira's message. Jira answers 400 only when
   every element failed, with the same per-element errors.
4. No answer or a 5xx: every link stays in doubt (a later write searches by label, as today). A 429 or another
   refusal of the whole request: every link is released and the error raised (MustWait: the events wait).

Call outside any transaction.
"""

import json
import logging

from connector.errors import JiraError, VendorError
from connector.ledger import (
    PROPERTY_KEY,
    _Durable,
    _issue_ids,
    claim,
    issue_label,
    marker,
    under_lock,
    with_label,
)
from connector.models import Link

log = logging.getLogger(__name__)

BULK_MAX = 50  # Jira: "Creates upto 50 issues"
SETTLED = (Link.State.CREATED, Link.State.DELETED, Link.State.ROLLED_BACK)


def element_errors(body):
    """{element number: readable message} from a bulk answer's "errors" (or a JiraError's body)."""
    if isinstance(body, str):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            return {}
    found = {}
    failures = body.get("errors") if isinstance(body, dict) else None
    for failure in failures if isinstance(failures, list) else []:
        if not isinstance(failure, dict):
            continue
        number = failure.get("failedElementNumber")
        details = failure.get("elementErrors") or {}
        parts = [str(m) for m in details.get("errorMessages") or []]
        parts += [f"{field}: {message}" for field, message in (details.get("errors") or {}).items()]
        if isinstance(number, int):
            found[number] = "; ".join(parts) or f"HTTP {failure.get('status', 400)}"
    return found


def create_issues(*, client, tenant, object_type, items):
    """Create the issues of `items` = [(object_id, fields, event)] (at most BULK_MAX) in one request.

    Returns {object_id: (result, value)}: ("created", link), ("settled", link) when nothing was written (already
    created, deleted or rolled back), ("single", None) to go the one-by-one way (in doubt, or another worker's
    claim), ("failed", Jira's message for that element). Raises the request's VendorError as the protocol says.
    """
    if len(items) > BULK_MAX:
        raise ValueError(f"at most {BULK_MAX} issues per bulk create")
    return under_lock(client, lambda: _create_issues(client, tenant, object_type, items))


def _create_issues(client, tenant, object_type, items):
    results, claimed = {}, {}
    for object_id, fields, event in items:
        object_id = str(object_id)
        link, claimed_now = claim(tenant, object_type, object_id, Link.Purpose.ISSUE, event=event)
        if link.state in SETTLED:
            results[object_id] = ("settled", link)
        elif not claimed_now or link.state != Link.State.PENDING:
            results[object_id] = ("single", None)
        else:
            claimed[object_id] = (link, fields, event)
    if not claimed:
        return results
    error = None
    with _Durable():
        locked = {
            lk.object_id: lk
            for lk in Link.objects.select_for_update().filter(
                pk__in=[link.pk for link, _, _ in claimed.values()], state=Link.State.PENDING
            )
        }
        order = [object_id for object_id in claimed if object_id in locked]
        results.update({object_id: ("single", None) for object_id in claimed if object_id not in locked})
        updates = [
            {
                "fields": with_label(claimed[oid][1], issue_label(tenant, object_type, oid)),
                "properties": [{"key": PROPERTY_KEY, "value": marker(tenant, object_type, oid)}],
            }
            for oid in order
        ]
        answer, failures = None, {}
        if order:
            try:
                answer = client.create_issues(updates) or {}
                failures = element_errors(answer)
            except JiraError as exc:
                failures = element_errors(exc.body) if exc.status == 400 else {}
                if not failures:
                    error = exc
            except VendorError as exc:
                error = exc
        created = iter((answer or {}).get("issues") or [])
        for number, object_id in enumerate(order):
            link, event = locked[object_id], claimed[object_id][2]
            if error is not None and error.ambiguous:
                link.state, link.event = Link.State.IN_DOUBT, event or link.event
                link.save()
            elif error is not None or number in failures:
                link.delete()  # nothing written for it: a replay starts afresh
                if error is None:
                    results[object_id] = ("failed", f"Jira bulk create refused it: {failures[number]}")
            else:
                issue = next(created, None)
                if issue is None:  # fewer issues than elements without errors: unknown, search later
                    link.state = Link.State.IN_DOUBT
                    results[object_id] = ("single", None)
                else:
                    for name, value in _issue_ids(issue).items():
                        setattr(link, name, value)
                    link.state = Link.State.CREATED
                    results[object_id] = ("created", link)
                link.event = event or link.event
                link.save()
    if error is not None:  # raised after the commit, so the in-doubt state survives
        log.info(
            "Bulk create of %d %s issue(s) for %s: %s", len(order), object_type, tenant.slug, error.detail
        )
        raise error
    return results
