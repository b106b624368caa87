"""The vendor host of the multi-host run (tests/bench/hosts.py): the fast fake FreshBooks and Jira
(tests/bench/fakes.py) served on this host's own address, run as
`ip netns exec <vendors> python -m tests.bench.vendorhost ADDRESS`.

Prints one JSON line, {"freshbooks": url, "jira": url}, then serves until its standard input closes (the run
ends) or it is terminated. The run reads the fake Jira's state over HTTP:
- `GET /_bench/issues`: {invoice object id: issues created for it};
- `GET /_bench/clients`: {sender address: Jira requests it made} (which host's worker called Jira).
"""

import json
import os
import sys
from collections import Counter

import django


def main(address):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.bench.settings")
    django.setup()
    from connector.sandbox import server
    from tests.bench.fakes import fast_freshbooks, fast_jira, issues_by_object

    server.BIND_HOST = address
    fb, jira = fast_freshbooks(), fast_jira(validate=False)

    @jira.route("GET", r"/_bench/issues", first=True)
    def issues(request):
        return issues_by_object(jira)

    @jira.route("GET", r"/_bench/clients", first=True)
    def clients(request):
        return dict(Counter(r.client for r in jira.calls() if r.path.startswith("/rest/")))

    print(json.dumps({"freshbooks": fb.url, "jira": jira.url}), flush=True)
    sys.stdin.read()  # until the run closes the pipe
    fb.close()
    jira.close()


if __name__ == "__main__":
    main(sys.argv[1])
