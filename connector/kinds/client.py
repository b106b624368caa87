"""Clients: Jira user matches for reporter/assignee; an issue only when a mapping asks for one."""

from connector.kinds.base import FRESHBOOKS_WEB, Kind, person_name, text

DOCS = {
    "client_name": 'The client\'s organization, else "first last".',
    "organization": "The client's organization.",
    "email": "The client's email address.",
    "fname": "First name.",
    "lname": "Last name.",
    "client": "The whole FreshBooks client record.",
}


def build(record, related):
    return {
        "client_name": person_name(record),
        "organization": text(record.get("organization")),
        "email": text(record.get("email")),
        "fname": text(record.get("fname")),
        "lname": text(record.get("lname")),
    }


def people(record, related):
    return {"client": (record.get("id") or record.get("userid"), record.get("email"))}


KIND = Kind(
    name="client",
    scope="account",
    resource=("users/clients", "client"),
    writes="user",
    build=build,
    docs=DOCS,
    people=people,
    link=FRESHBOOKS_WEB + "/client/{account}-{id}",
    on_delete="client deleted in FreshBooks: nothing to sync",
)
