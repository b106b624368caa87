"""The running sandbox: the tests' vendor fakes assembled into a FreshBooks and a Jira (with Atlassian sign-in)
on loopback, their state kept on disk, plus what a real FreshBooks does on its own: it sends the
callback.verify delivery when a callback is created and signed deliveries when records change.

`Sandbox(fb_port, auth_port, jira_port, state_path)` starts three servers (port 0: any free port):
- FreshBooks (API and sign-in): the business "Sandbox Bakery"; its page `/` creates sample records
  (connector/sandbox/samples.py) one at a time or as a stream, and delivers them signed to every verified
  callback for the event, or "loses" the delivery (the record exists, FreshBooks never says so).
- Atlassian sign-in: one accessible Jira site, the sandbox Jira.
- Jira (the api.atlassian.com gateway and the site): project FIN; its page `/` lists the issues and worklogs,
  `/browse/<key>` shows one issue.
State is written to `state_path` after every change and read back at start.
"""

import copy
import logging
import queue
import re
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import requests

from connector.sandbox import samples
from connector.sandbox import state as saved_state
from connector.sandbox.atlassian import CLOUD_ID, make_fake_atlassian, site
from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID, make_fake_freshbooks
from connector.sandbox.freshbooks_auth import install_auth_routes
from connector.sandbox.freshbooks_callbacks import install_callback_routes, signed_delivery
from connector.sandbox.freshbooks_lists import install_list_routes
from connector.sandbox.freshbooks_records import install_record_routes, put
from connector.sandbox.jira import FakeJira, install_core_routes
from connector.sandbox.jira_issues import install_issue_routes
from connector.sandbox.jira_quota import Quota, install_quota
from connector.sandbox.jira_webhooks import install_webhook_routes
from connector.sandbox.pages import (
    BUSINESS_NAME,
    MAX_FIELD,
    PAGES,
    install_freshbooks_pages,
    install_jira_pages,
)

log = logging.getLogger(__name__)

MAX_ACTIVITY = 200
VERIFY_DELAY = (
    1.0  # seconds before the callback.verify delivery: the connector commits its callback row first
)
DELIVERY_TIMEOUT = 15


def _now():
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _restore(server, saved):
    """Put saved values into `server.state` in place, so routes holding a reference see them."""
    for key, value in (saved or {}).items():
        current = server.state.get(key)
        if isinstance(current, (dict, set)) and isinstance(value, type(current)):
            current.clear()
            current.update(value)
        else:
            server.state[key] = value


def _shorten(text, limit=MAX_FIELD):
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Sandbox:
    def __init__(self, fb_port=0, auth_port=0, jira_port=0, state_path=None, verify_delay=VERIFY_DELAY):
        self.state_path = state_path
        self.verify_delay = verify_delay
        self.stopped = threading.Event()
        saved = saved_state.read(state_path) if state_path else {}

        self.fb = make_fake_freshbooks(port=fb_port)
        self.fb.keep_requests = False
        install_auth_routes(
            self.fb,
            memberships=[{"account_id": ACCOUNT_ID, "business_id": BUSINESS_ID, "name": BUSINESS_NAME}],
            title=f"FreshBooks sandbox: allow the connector to read {BUSINESS_NAME}",
        )
        install_callback_routes(self.fb, send_verification=self._send_verification)
        install_record_routes(self.fb)
        # The list routes are what a reconcile pass reads: it finds the records whose webhook was lost.
        install_list_routes(self.fb)
        self.fb.state.setdefault("activity", [])
        self.fb.state.setdefault("stream", {"on": False, "interval": 10})

        self.jira = FakeJira(cloud_id=CLOUD_ID, port=jira_port)
        self.jira.keep_requests = False
        self.jira.open_paths = re.compile(r"/\Z|/browse/|" + PAGES + "/")
        install_webhook_routes(install_issue_routes(install_core_routes(self.jira)))
        install_quota(self.jira, Quota())  # Tier 1's hourly points pool; "exhaust the quota" on its page
        self.auth = make_fake_atlassian(
            self.jira, sites=[site(name="sandbox", url=self.jira.url)], port=auth_port
        )
        self.auth.keep_requests = False

        _restore(self.fb, saved.get("freshbooks"))
        _restore(self.jira, saved.get("jira"))
        _restore(self.auth, saved.get("atlassian"))
        # A restart never starts the stream by itself: records appear only when someone asks again.
        self.fb.state["stream"] = {**self.fb.state["stream"], "on": False}
        self.jira.credentials["bearer"].update(saved.get("jira_bearer") or ())
        self.auth.state["sites"] = [site(name="sandbox", url=self.jira.url)]  # the port may have changed

        install_freshbooks_pages(self)
        install_jira_pages(self)
        for server in (self.fb, self.jira, self.auth):
            server.after_change = self.save
        self.jobs = queue.Queue()
        for name, target in (("sandbox-deliveries", self._run_jobs), ("sandbox-stream", self._stream)):
            threading.Thread(target=target, name=name, daemon=True).start()

    # --- lifecycle -------------------------------------------------------------------------------------------

    def save(self):
        if not self.state_path:
            return
        with self.fb.lock, self.jira.lock, self.auth.lock:
            states = {
                "freshbooks": self.fb.state,
                "jira": self.jira.state,
                "atlassian": self.auth.state,
                "jira_bearer": set(self.jira.credentials["bearer"]),
            }
            saved_state.save(self.state_path, states)

    def close(self):
        self.stopped.set()
        self.save()
        for server in (self.fb, self.jira, self.auth):
            server.close()

    # --- what FreshBooks does on its own ---------------------------------------------------------------------

    def _later(self, func, *args, delay=0.0):
        """Run `func(*args)` on the delivery thread, `delay` seconds from now: deliveries go out one at a
        time, in order."""
        self.jobs.put((time.monotonic() + delay, func, args))

    def _run_jobs(self):
        while not self.stopped.is_set():
            try:
                due, func, args = self.jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if not self.stopped.wait(max(0.0, due - time.monotonic())):
                    func(*args)
            except Exception:  # a delivery failing must not stop the ones after it
                log.exception("sandbox: delivery job failed")
            finally:
                self.jobs.task_done()

    def idle(self):
        """True when no delivery is waiting or being sent."""
        return self.jobs.unfinished_tasks == 0

    def _post(self, uri, body, headers, what):
        """POST a delivery like FreshBooks: retried (1, 2, 3, 4 × verify_delay later) while the answer is a
        404 (the connector has not committed the callback yet), a 5xx or no answer; returns the last answer
        as text."""
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        outcome = "not sent"
        for attempt in range(5):
            if attempt and self.stopped.wait(self.verify_delay * attempt):
                break
            try:
                answer = requests.post(uri, data=body, headers=headers, timeout=DELIVERY_TIMEOUT)
            except requests.RequestException as exc:
                outcome = f"{what} failed: {type(exc).__name__}"
                continue
            outcome = f"{what}: HTTP {answer.status_code}"
            if answer.status_code != 404 and answer.status_code < 500:
                break
        return outcome

    def _send_verification(self, callback):
        """POST callback.verify to the callback's URI, a moment after the callback was created."""
        body = urlencode(
            [
                ("name", "callback.verify"),
                ("verifier", callback["verifier"]),
                ("object_id", str(callback["callbackid"])),
                ("account_id", callback["account_id"]),
                ("business_id", BUSINESS_ID),
                ("user_id", "1"),
            ]
        )

        def send():
            outcome = self._post(callback["uri"], body, {}, f"callback.verify {callback['callbackid']}")
            log.info("sandbox: %s", outcome)

        self._later(send, delay=self.verify_delay)

    def create(self, name, fields, lose=False):
        """Store a sample record and deliver its event (unless `lose`); returns the activity entry."""
        sample = samples.SAMPLES[name]
        with self.fb.lock:
            held = copy.deepcopy(self.fb.state.get("records", {}))
        records = samples.stamped(sample.build(fields, self._new_id, held))
        for kind, record in records:
            put(self.fb, kind, record)
        record = records[0][1]
        entry = {
            "at": _now(),
            "sample": sample.label,
            "event": sample.event,
            "object_id": str(record["id"]),
            "summary": _shorten(", ".join(f"{k}: {v}" for k, v in fields.items() if v)),
            "delivery": "lost (never delivered)" if lose else "sending…",
        }
        with self.fb.lock:
            activity = self.fb.state["activity"]
            activity.insert(0, entry)
            del activity[MAX_ACTIVITY:]
        if not lose:
            self._later(self._deliver, entry)
        self.save()
        return entry

    def _new_id(self):
        with self.fb.lock:
            self.fb.state["next_record_id"] = self.fb.state.get("next_record_id", 70000) + 1
            return self.fb.state["next_record_id"]

    def _deliver(self, entry):
        event = entry["event"]
        with self.fb.lock:
            hooks = [
                dict(c)
                for c in self.fb.state["callbacks"].values()
                if c["verified"] and c["event"] in (event, event.split(".")[0])
            ]
        if not hooks:
            entry["delivery"] = (
                f"not sent: no verified callback for {event} (webhooks not registered or verified yet, or no "
                "mapping or worklog rule of the tenant uses this event)"
            )
        results = []
        for hook in hooks:
            fields = {
                "name": event,
                "object_id": entry["object_id"],
                "account_id": hook["account_id"],
                "business_id": BUSINESS_ID,
                "identity_id": "1",
                "user_id": "1",
            }
            body, headers = signed_delivery(fields, hook["verifier"])
            results.append(
                self._post(hook["uri"], body, headers, f"delivered to callback {hook['callbackid']}")
            )
        if results:
            entry["delivery"] = "; ".join(results)
        self.save()

    def _stream(self):
        """While the stream is on: one random sample every `interval` seconds (checked twice a second)."""
        last = time.monotonic()
        while not self.stopped.wait(0.5):
            stream = self.fb.state["stream"]
            if not stream.get("on"):
                last = time.monotonic()
            elif time.monotonic() - last >= max(2, int(stream.get("interval") or 10)):
                last = time.monotonic()
                with self.fb.lock:
                    held = copy.deepcopy(self.fb.state.get("records", {}))
                self.create(*samples.stream_choice(records=held))
