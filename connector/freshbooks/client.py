"""A thin FreshBooks API client on the one transport (connector.transport): URL constants, envelopes unwrapped,
bearer token refreshed on 401, 429 waited out (FreshBooks publishes no rate limit; its SDKs retry 429 with
back-off)."""

import time
from datetime import UTC
from zoneinfo import ZoneInfo

from django.conf import settings

from connector.errors import FreshBooksError
from connector.kinds import KINDS
from connector.transport import VendorClient
from tenants import tokens
from tenants.oauth import FreshBooksProvider

ME = FreshBooksProvider.discovery[1]  # users/me: the identity and its business memberships
CALLBACKS = "/events/account/{account_id}/events/callbacks"
CALLBACK = "/events/account/{account_id}/events/callbacks/{callback_id}"
ACCOUNTING = "/accounting/account/{account_id}/{resource}/{object_id}"
TIMETRACKING = "/timetracking/business/{business_id}/time_entries/{object_id}"
PROJECT = "/projects/business/{business_id}/project/{object_id}"
ACCOUNTING_LIST = "/accounting/account/{account_id}/{resource}"
TIMETRACKING_LIST = "/timetracking/business/{business_id}/time_entries"
MAX_PER_PAGE = 100  # FreshBooks' largest page (PY-SDK builders/paginator.py MAX_PER_PAGE)
EASTERN = ZoneInfo("America/New_York")  # accounting datetimes (NODE-SDK pages/guide/data_fields.md)

# Resource → path under /accounting/account/{account_id}/ and the key of the single record: the account kinds
# as they declare it (connector.kinds), and the related records fetched with them.
ACCOUNTING_RESOURCES = {
    **{name: kind.resource for name, kind in KINDS.items() if kind.scope == "account"},
    "expense_category": ("expenses/categories", "category"),
    "bill_vendor": ("bill_vendors/bill_vendors", "bill_vendor"),
}


__all__ = ["ACCOUNTING_RESOURCES", "FreshBooksClient", "FreshBooksError", "body_message", "error_message"]


def error_message(response):
    """FreshBooks' error text from any of its error formats."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    return body_message(body)


def body_message(body):
    """The error text inside a decoded FreshBooks answer (or the answer itself, shortened)."""
    if isinstance(body, dict):
        errors = (
            (body.get("response") or {}).get("errors") if isinstance(body.get("response"), dict) else None
        )
        if errors:
            return "; ".join(e.get("message", str(e)) for e in errors)
        for detail in body.get("details") or []:
            if isinstance(detail, dict) and (detail.get("metadata") or {}).get("message"):
                return detail["metadata"]["message"]
        for key in ("message", "error_description", "error"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:300]


class FreshBooksClient(VendorClient):
    """FreshBooks' URLs and bearer token on the one transport (connector.transport): the token is refreshed once
    on a 401; 429 and 5xx as connector.retry says."""

    vendor = "FreshBooks"
    error_class = FreshBooksError
    redirect_advice = "check FRESHBOOKS_API_URL"
    base_headers = {"Accept": "application/json", "Api-Version": "alpha"}

    def __init__(self, account, event=None, actor="worker", sleep=time.sleep):
        super().__init__(event=event, actor=actor, sleep=sleep)
        self.account = account

    def url(self, path):
        return settings.FRESHBOOKS_API_URL + path

    def credentials(self):
        return {"headers": {"Authorization": f"Bearer {tokens.access_token(self.account)}"}}

    def refresh_credentials(self, sent):
        stale = sent["headers"]["Authorization"][len("Bearer ") :]
        return {"headers": {"Authorization": f"Bearer {tokens.refresh(self.account, stale_token=stale)}"}}

    def error_message(self, response):
        return error_message(response)

    @staticmethod
    def _unwrap(body, path, *keys):
        """body[key1][key2]…, a record (dict); FreshBooksError (with its message) for any other answer."""
        found = body
        for key in keys:
            found = found.get(key) if isinstance(found, dict) else None
        if not isinstance(found, dict):
            raise FreshBooksError(f"FreshBooks GET {path}: unexpected answer: {body_message(body)}")
        return found

    # Identity
    def me(self):
        return self.request("GET", ME)["response"]

    # Records
    def get_record(self, kind, object_id, includes=()):
        """One accounting record (`kind` from ACCOUNTING_RESOURCES) by id, envelope removed."""
        resource, key = ACCOUNTING_RESOURCES[kind]
        path = ACCOUNTING.format(account_id=self.account.account_id, resource=resource, object_id=object_id)
        params = [("include[]", name) for name in includes] or None
        return self._unwrap(self.request("GET", path, params=params), path, "response", "result", key)

    def get(self, kind, object_id, includes=()):
        """One record of any kind by id: time entries and projects under the business, the others under the
        accounting account (ACCOUNTING_RESOURCES); `includes` go to accounting records only."""
        if kind == "time_entry":
            return self.get_time_entry(object_id)
        if kind == "project":
            return self.get_project(object_id)
        return self.get_record(kind, object_id, includes)

    def get_time_entry(self, object_id):
        path = TIMETRACKING.format(business_id=self.account.business_id, object_id=object_id)
        return self._unwrap(self.request("GET", path), path, "time_entry")

    def get_project(self, object_id):
        path = PROJECT.format(business_id=self.account.business_id, object_id=object_id)
        return self._unwrap(self.request("GET", path), path, "project")

    def list_page(self, kind, page, *, updated_since):
        """One page of `kind` records updated at or after `updated_since` (an aware datetime), oldest
        filter first: returns (records, pages). Pages hold MAX_PER_PAGE records.

        Accounting kinds (ACCOUNTING_RESOURCES): GET …/{resource}?search[updated_min]=<US/Eastern
        "YYYY-MM-DD HH:MM:SS">&include[]=<the kind's includes> → response.result.{<plural>, pages} (PY-SDK
        builders/: filter.py `between`, the includes builder).
        Time entries: GET /timetracking/business/{id}/time_entries?updated_since=<ISO 8601 UTC> →
        {time_entries, meta.pages} (PY-SDK `date_time("updated_since")`). Raises FreshBooksError."""
        paging = {"page": page, "per_page": MAX_PER_PAGE}
        if KINDS[kind].scope == "business":
            path = TIMETRACKING_LIST.format(business_id=self.account.business_id)
            since = updated_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = self.request("GET", path, params={**paging, "updated_since": since})
            meta = body.get("meta") if isinstance(body, dict) else None
            records = body.get("time_entries") if isinstance(body, dict) else None
        else:
            resource, _ = ACCOUNTING_RESOURCES[kind]
            path = ACCOUNTING_LIST.format(account_id=self.account.account_id, resource=resource)
            since = updated_since.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S")
            params = [*paging.items(), ("search[updated_min]", since)]
            params += [("include[]", name) for name in KINDS[kind].includes]
            body = self.request("GET", path, params=params)
            meta = ((body or {}).get("response") or {}).get("result") if isinstance(body, dict) else None
            records = meta.get(resource.rsplit("/", 1)[1]) if isinstance(meta, dict) else None
        if not isinstance(records, list) or not isinstance(meta, dict):
            raise FreshBooksError(f"FreshBooks GET {path}: unexpected answer: {body_message(body)}")
        return records, int(meta.get("pages") or 1)

    # Callbacks (webhooks)
    def list_callbacks(self):
        """All registered callbacks, every page."""
        path = CALLBACKS.format(account_id=self.account.account_id)
        found, page = [], 1
        while True:
            result = self.request("GET", path, params={"page": page, "per_page": 100})["response"]["result"]
            found.extend(result.get("callbacks", []))
            if page >= int(result.get("pages") or 1):
                return found
            page += 1

    def create_callback(self, event, uri):
        path = CALLBACKS.format(account_id=self.account.account_id)
        body = {"callback": {"event": event, "uri": uri}}
        return self.request("POST", path, json=body)["response"]["result"]["callback"]

    def verify_callback(self, callback_id, verifier):
        path = CALLBACK.format(account_id=self.account.account_id, callback_id=callback_id)
        body = {"callback": {"verifier": verifier}}
        return self.request("PUT", path, json=body)["response"]["result"]["callback"]

    def resend_verification(self, callback_id):
        path = CALLBACK.format(account_id=self.account.account_id, callback_id=callback_id)
        return self.request("PUT", path, json={"callback": {"resend": True}})

    def delete_callback(self, callback_id):
        path = CALLBACK.format(account_id=self.account.account_id, callback_id=callback_id)
        return self.request("DELETE", path)
