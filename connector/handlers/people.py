"""FreshBooks clients and vendors → Jira users, for an issue's reporter and assignee.

An explicit JiraUserMatch row (Admin → Jira user matches) wins; else Jira's user search by the email, whose
answer is cached as a match row (AUTO_MATCH_NOTE; dropped again when the client changes in FreshBooks).
"""

from connector.errors import JiraError
from connector.models import JiraUserMatch

AUTO_MATCH_NOTE = "Found by Jira user search on the FreshBooks email"


def match_user(job, kind, person):
    """The Jira user id for a FreshBooks client/vendor `person` = (id, email), or None when nothing matches."""
    fb_id, email = person if person else (None, None)
    fb_id = "" if fb_id in (None, 0, "0") else str(fb_id)
    if fb_id:
        row = JiraUserMatch.objects.filter(tenant=job.tenant, kind=kind, freshbooks_id=fb_id).first()
        if row:
            return row.jira_account_id
    if not email:
        return None
    account_id = job.jira.find_user(email)
    if account_id and fb_id:
        JiraUserMatch.objects.get_or_create(
            tenant=job.tenant,
            kind=kind,
            freshbooks_id=fb_id,
            defaults={"jira_account_id": account_id, "note": AUTO_MATCH_NOTE},
        )
    return account_id


def users_for(job, mapping, persons):
    """{"reporter_id": …, "assignee_id": …} for the mapping's user sources; what is left unset is noted."""
    found = {}
    for role in ("reporter", "assignee"):
        source = getattr(mapping, f"{role}_from")
        if not source:
            continue
        try:
            user = match_user(job, source, persons.get(source))
        except JiraError as exc:  # e.g. no "Browse users" permission: the issue is still worth creating
            job.notes.append(f"{role} left unset: Jira user search failed ({exc})")
            continue
        if user:
            found[f"{role}_id"] = user
        else:
            fb_id = (persons.get(source) or (None,))[0]
            job.notes.append(
                f"{role} left unset: no Jira user matches the FreshBooks {source} {fb_id or ''}".strip()
            )
    return found


def forget_auto_match(job, kind, freshbooks_id):
    """Drop our own cached match for a changed client (never an operator's)."""
    JiraUserMatch.objects.filter(
        tenant=job.tenant, kind=kind, freshbooks_id=freshbooks_id, note=AUTO_MATCH_NOTE
    ).delete()
