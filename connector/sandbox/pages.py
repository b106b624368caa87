"""The sandbox's own pages and forms (not vendor API), under PAGES on each fake: FreshBooks' page creates sample
records and shows the activity, Jira's page lists issues and worklogs and lets Jira misbehave or run out of quota.
Templates: connector/sandbox/templates/sandbox/."""

from urllib.parse import parse_qsl

from django.template.loader import render_to_string
from django.utils.html import escape

from connector.jira.adf import to_text
from connector.sandbox import samples
from connector.sandbox.freshbooks import ACCOUNT_ID
from connector.sandbox.jira import BEHAVIOURS, behaviour, set_behaviour
from connector.sandbox.server import Response

BUSINESS_NAME = "Sandbox Bakery"
PAGES = "/_sandbox"  # the sandbox's own pages and forms (not vendor API)
MAX_FIELD = 200  # characters a sample field may have; longer is refused, never cut


def _same_origin(server, request):
    """Forms posted to the sandbox pages come from those pages (no cross-site posts from other tabs)."""
    origin = request.headers.get("origin")
    return origin in (None, server.url)


def install_freshbooks_pages(sandbox):
    """The FreshBooks sandbox's page `/`: sample records to create (one, or a stream), callbacks, activity."""
    fb = sandbox.fb

    @fb.route("GET", r"/")
    @fb.route("GET", PAGES + r"/")
    def home(request):
        chosen = request.arg("sample") or "invoice"
        if chosen not in samples.SAMPLES:
            chosen = "invoice"
        sample = samples.SAMPLES[chosen]
        with fb.lock:
            invoices = sorted(
                fb.state.get("records", {}).get("invoice", {}).values(), key=lambda r: -int(r["id"])
            )
            callbacks = sorted(fb.state["callbacks"].values(), key=lambda c: c["callbackid"])
            context = {
                "business": BUSINESS_NAME,
                "account_id": ACCOUNT_ID,
                "samples": samples.SAMPLES,
                "chosen": chosen,
                "sample": sample,
                "stream": dict(fb.state["stream"]),
                "fields": [(n, label, default) for n, label, default in sample.fields],
                "callbacks": [
                    {k: c[k] for k in ("callbackid", "event", "uri", "verified")} for c in callbacks
                ],
                "activity": [dict(a) for a in fb.state["activity"][:50]],
                "pages": PAGES,
                "invoices": invoices[:50],
            }
        return render_to_string("sandbox/freshbooks.html", context)

    @fb.route("POST", PAGES + r"/create")
    def create(request):
        if not _same_origin(fb, request):
            return Response(403, "<h1>Forbidden: cross-site form</h1>")
        form = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        name = form.pop("sample", "")
        if name not in samples.SAMPLES:
            return Response(400, "<h1>Unknown sample kind</h1>")
        lose = form.pop("lose", "") == "1"
        labels = {n: label for n, label, _default in samples.SAMPLES[name].fields}
        too_long = [labels[k] for k, v in form.items() if k in labels and len(v) > MAX_FIELD]
        if too_long:
            names = escape(", ".join(too_long))
            page = f'<h1>{names}: at most {MAX_FIELD} characters</h1><p>Nothing was created. <a href="/">Back</a></p>'
            return Response(400, page)
        try:
            sandbox.create(name, {k: v for k, v in form.items() if k in labels}, lose=lose)
        except samples.SampleError as exc:
            return Response(400, f'<h1>{escape(str(exc))}</h1><a href="/?sample={name}">Back</a>')
        except ValueError:
            return Response(
                400, '<h1>Amount and minutes must be numbers, e.g. 120.00</h1><a href="/">Back</a>'
            )
        return Response(303, "", {"Location": f"/?sample={name}#activity"})

    @fb.route("GET", PAGES + r"/activity")
    def activity(request):
        """The activity as JSON: the page updates its "sending…" cells from it by itsandbox."""
        with fb.lock:
            rows = [
                {"object_id": a["object_id"], "delivery": a["delivery"]} for a in fb.state["activity"][:50]
            ]
        return Response(200, rows)

    @fb.route("POST", PAGES + r"/stream")
    def stream(request):
        if not _same_origin(fb, request):
            return Response(403, "<h1>Forbidden: cross-site form</h1>")
        form = dict(parse_qsl(request.body.decode()))
        interval = form.get("interval", "10")
        with fb.lock:
            fb.state["stream"] = {
                "on": form.get("on") == "1",
                "interval": max(2, min(3600, int(interval))) if interval.isdigit() else 10,
            }
        return Response(303, "", {"Location": "/#stream"})


def install_jira_pages(sandbox):
    """The Jira sandbox's page `/` (issues and worklogs, misbehaviours, quota) and `/browse/<key>`."""
    jira = sandbox.jira

    def page(request, key=None):
        with jira.lock:
            issues = sorted(jira.state["issues"].values(), key=lambda i: -int(i["id"]))
            shown = []
            for issue in issues:
                if key and issue["key"] != key:
                    continue
                fields = issue["fields"]
                description = fields.get("description")
                worklogs = jira.state["worklogs"].get(issue["key"], [])
                shown.append(
                    {
                        "key": issue["key"],
                        "summary": fields.get("summary", ""),
                        "type": (fields.get("issuetype") or {}).get("name", ""),
                        "labels": fields.get("labels") or [],
                        "description": to_text(description)
                        if isinstance(description, dict)
                        else description or "",
                        "worklogs": [
                            {
                                "started": w["started"],
                                "minutes": (w.get("timeSpentSeconds") or 0) // 60,
                                "comment": to_text(w["comment"])
                                if isinstance(w.get("comment"), dict)
                                else w.get("comment") or "",
                            }
                            for w in worklogs
                        ],
                    }
                )
            context = {
                "issues": shown,
                "key": key,
                "projects": list(jira.state["projects"].values()),
                "webhooks": len(jira.state.get("dynamic_webhooks") or {}),
                "pages": PAGES,
                "behaviours": BEHAVIOURS,
                "behaviour": behaviour(jira),
                "quota": {
                    "left": jira.quota.left(),
                    "points": jira.quota.points,
                    "reset_in": jira.quota.reset_in(jira.quota.clock()),
                },
            }
        if key and not shown:
            return Response(404, render_to_string("sandbox/jira.html", context))
        return render_to_string("sandbox/jira.html", context)

    @jira.route("GET", r"/")
    def home(request):
        return page(request)

    @jira.route("POST", PAGES + r"/behaviour")
    def misbehave(request):  # the page's "Jira misbehaves" form (connector/sandbox/jira.py BEHAVIOURS)
        if not _same_origin(jira, request):
            return Response(403, "<h1>Forbidden: cross-site form</h1>")
        set_behaviour(jira, dict(parse_qsl(request.body.decode())).get("behaviour", ""))
        return Response(303, "", {"Location": "/#behaviour"})

    @jira.route("POST", PAGES + r"/quota/(?P<what>exhaust|refill)")
    def quota(request):
        """Spend what is left of this hour's points (OAuth calls then answer 429 until the reset), or refill."""
        if not _same_origin(jira, request):
            return Response(403, "<h1>Forbidden: cross-site form</h1>")
        if request.match["what"] == "exhaust":
            jira.quota.exhaust()
        else:
            jira.quota.refill()
        return Response(303, "", {"Location": "/#quota"})

    @jira.route("GET", r"/browse/(?P<key>[A-Z][A-Z0-9_]*-\d+)")
    def browse(request):
        return page(request, request.match["key"])
