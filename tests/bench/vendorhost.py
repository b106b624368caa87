"""The vendor host of the multi-host run (tests/bench/hosts.py): the fast fake FreshBooks and Jira
(tests/bench/fakes.py) served on this host's own address, run as
`ip netns exec <vendors> python -m tests.bench.vendorhost ADDRESS`.

Prints one JSON line, {"freshbooks": url, "jira": url}, then serves until its standard input closes (the run
ends) or it is terminated. The run reads the fake Jira's state over HTTP:
- `GET /_bench/issues`: {invoice object id: issues created for it};
- `GET /_bench/clients`: {sender address: Jira requests it made} (which host's worker called Jira);
- `POST /_bench/quota` {"seconds": S}: spend the OAuth app's points pool now, refilled S seconds later
  (connector/sandbox/jira_quota.py): every OAuth call answers 429 `jira-quota-global-based` with a `Retry-After`
  counting down to the refill; answers {"refill_at": epoch seconds};
- `GET /_bench/quota?since=T`: {"calls": [[epoch s, sender address, method, path, status, reason], …]}, the
  Jira API requests received since T (this host's clock: the run's hosts share the machine's);
- `POST /_bench/slow` {"seconds": S}: from now on every Jira issue create (`POST …/rest/api/3/issue`) is applied
  at once and answered S seconds later (0: no longer; answers already held keep their time); answers
  {"seconds": S};
- `GET /_bench/slow`: {"held": {sender address: [FreshBooks object ids of the creates whose answer is held now]}},
  the creates in flight on each host (read from the issue property the connector sends).
The fake Jira answers API tokens and, as Atlassian's gateway (`/ex/jira/CLOUD_ID/…`), the OAuth token TOKEN.
"""

import json
import os
import re
import sys
import threading
import time
from collections import Counter

import django

CLOUD_ID, TOKEN = "bench-hosts-cloud", "bench-hosts-oauth-token"
ISSUE_CREATE = re.compile(r"/rest/api/3/issue\Z")


def install_slow_creates(jira):
    """Answer Jira's issue creates late, once applied (install it after install_quota): the `/_bench/slow`
    routes. Returns the routes' state."""
    state = {"seconds": 0.0, "held": {}}  # held: {id(request): (sender address, object id)}
    lock = threading.Lock()
    plain_dispatch = jira.dispatch

    def dispatch(request):
        seconds = state["seconds"]
        if not (seconds and request.method == "POST" and ISSUE_CREATE.search(request.path)):
            return plain_dispatch(request)
        properties = {p.get("key"): p.get("value") for p in (request.json() or {}).get("properties") or []}
        object_id = str((properties.get("ml-connector") or {}).get("object_id", ""))
        response = plain_dispatch(request)
        with lock:
            state["held"][id(request)] = (request.client, object_id)
        time.sleep(seconds)
        with lock:
            del state["held"][id(request)]
        return response

    @jira.route("POST", r"/_bench/slow", first=True)
    def slow(request):
        state["seconds"] = float(request.json()["seconds"])
        return {"seconds": state["seconds"]}

    @jira.route("GET", r"/_bench/slow", first=True)
    def held(request):
        found = {}
        with lock:
            for client, object_id in state["held"].values():
                found.setdefault(client, []).append(object_id)
        return {"held": found}

    jira.dispatch = dispatch
    return state


def main(address):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.bench.settings")
    django.setup()
    from connector.sandbox import server
    from connector.sandbox.jira_quota import Quota, install_quota
    from tests.bench.fakes import fast_freshbooks, fast_jira, issues_by_object

    server.BIND_HOST = address
    fb, jira = fast_freshbooks(), fast_jira(validate=False)
    jira.cloud_id = CLOUD_ID
    jira.credentials["bearer"].add(TOKEN)
    quota = Quota(points=10**9)  # plenty, until told to exhaust it

    @jira.route("GET", r"/_bench/issues", first=True)
    def issues(request):
        return issues_by_object(jira)

    @jira.route("GET", r"/_bench/clients", first=True)
    def clients(request):
        return dict(Counter(r.client for r in jira.calls() if r.path.startswith("/rest/")))

    @jira.route("POST", r"/_bench/quota", first=True)
    def exhaust(request):
        quota.exhaust(float(request.json()["seconds"]))
        return {"refill_at": quota.refill_at}

    @jira.route("GET", r"/_bench/quota", first=True)
    def quota_log(request):
        since = float(request.arg("since", 0))
        with quota.lock:
            found = list(quota.log)
        return {
            "calls": [
                [at, client, method, path, status, reason]
                for at, method, path, status, reason, client in found
                if at >= since and path.startswith("/rest/")
            ]
        }

    install_quota(jira, quota)  # in front of every route
    install_slow_creates(jira)  # last: in front of the quota
    print(json.dumps({"freshbooks": fb.url, "jira": jira.url}), flush=True)
    sys.stdin.read()  # until the run closes the pipe
    fb.close()
    jira.close()


if __name__ == "__main__":
    main(sys.argv[1])
