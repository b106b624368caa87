"""Webhook routes for FakeJira: dynamic webhooks (OAuth apps) and admin webhooks (Jira administrators).

State (in ``jira.state``):
- ``dynamic_webhooks``: {id: {"id", "url", "events", "jqlFilter", "expires_ms"}} — only app (Bearer) callers
  may use /rest/api/3/webhook, like Jira ("caller isn't an app" → 403 for Basic auth).
- ``admin_webhooks``: {id: {... as Jira returns it, plus "secret"}}; ``is_admin`` False → 403 on writes.
- ``expiry_format``: "ms" (the spec's int64) or "iso" (what every Atlassian example shows).
- ``registration_errors``: per-item errors to answer the next POST with (then cleared).
"""

import time
from datetime import UTC, datetime

from connector.sandbox.server import Response

THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000
MAX_PER_APP_USER = 5


def _expiry(jira, ms):
    if jira.state["expiry_format"] == "iso":
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return ms


def install_webhook_routes(jira):
    jira.state.update(
        dynamic_webhooks={},
        admin_webhooks={},
        next_webhook_id=1000,
        is_admin=True,
        expiry_format="ms",
        registration_errors=[],
    )

    def next_id():
        with jira.lock:
            jira.state["next_webhook_id"] += 1
            return jira.state["next_webhook_id"]

    def now_ms():
        return int(time.time() * 1000)

    def not_an_app(request):
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return Response(
                403, {"errorMessages": ["Only Connect and OAuth 2.0 apps can use this operation."]}
            )
        return None

    def shown(hook):
        return {
            "id": hook["id"],
            "url": hook["url"],
            "events": hook["events"],
            "jqlFilter": hook["jqlFilter"],
            "expirationDate": _expiry(jira, hook["expires_ms"]),
        }

    @jira.route("GET", r"/rest/api/3/webhook")
    def list_dynamic(request):
        if denied := not_an_app(request):
            return denied
        start, size = int(request.arg("startAt", 0)), int(request.arg("maxResults", 100))
        hooks = sorted(jira.state["dynamic_webhooks"].values(), key=lambda h: h["id"])
        page = [shown(h) for h in hooks[start : start + size]]
        return {
            "isLast": start + size >= len(hooks),
            "maxResults": size,
            "startAt": start,
            "total": len(hooks),
            "values": page,
        }

    @jira.route("POST", r"/rest/api/3/webhook")
    def register(request):
        if denied := not_an_app(request):
            return denied
        body = request.json()
        results = []
        forced = list(jira.state["registration_errors"])
        jira.state["registration_errors"] = []
        elsewhere = {h["url"] for h in jira.state["dynamic_webhooks"].values()} - {body["url"]}
        for item in body["webhooks"]:
            if elsewhere:  # Jira: one URL per OAuth app and site
                results.append({"errors": ["Only a single URL per app is allowed to be registered"]})
                continue
            if forced:
                results.append({"errors": [forced.pop(0)]})
                continue
            if len(jira.state["dynamic_webhooks"]) >= MAX_PER_APP_USER:
                results.append({"errors": ["Maximum number of webhooks per app and user reached."]})
                continue
            hook_id = next_id()
            jira.state["dynamic_webhooks"][hook_id] = {
                "id": hook_id,
                "url": body["url"],
                "events": item["events"],
                "jqlFilter": item["jqlFilter"],
                "expires_ms": now_ms() + THIRTY_DAYS_MS,
            }
            results.append({"createdWebhookId": hook_id})
        return {"webhookRegistrationResult": results}

    @jira.route("DELETE", r"/rest/api/3/webhook")
    def delete_dynamic(request):
        if denied := not_an_app(request):
            return denied
        for hook_id in request.json()["webhookIds"]:
            jira.state["dynamic_webhooks"].pop(hook_id, None)
        return Response(202)

    @jira.route("PUT", r"/rest/api/3/webhook/refresh")
    def refresh(request):
        if denied := not_an_app(request):
            return denied
        until = now_ms() + THIRTY_DAYS_MS
        for hook_id in request.json()["webhookIds"]:  # unknown ids are silently ignored, like Jira
            if hook_id in jira.state["dynamic_webhooks"]:
                jira.state["dynamic_webhooks"][hook_id]["expires_ms"] = until
        return {"expirationDate": _expiry(jira, until)}

    # Admin webhooks (not in the v3 spec: /rest/webhooks/1.0).
    def admin_only():
        if not jira.state["is_admin"]:
            return Response(403, {"errorMessages": ["You do not have the permission to manage webhooks."]})
        return None

    def admin_shown(hook):
        return {k: v for k, v in hook.items() if k != "secret"} | {"isSigned": bool(hook.get("secret"))}

    @jira.route("GET", r"/rest/webhooks/1.0/webhook")
    def list_admin(request):
        if denied := admin_only():
            return denied
        return [admin_shown(h) for h in jira.state["admin_webhooks"].values()]

    @jira.route("POST", r"/rest/webhooks/1.0/webhook")
    def create_admin(request):
        if denied := admin_only():
            return denied
        body = request.json()
        hook_id = next_id()
        hook = {
            "self": f"{jira.url}/rest/webhooks/1.0/webhook/{hook_id}",
            "name": body["name"],
            "url": body["url"],
            "events": body.get("events", []),
            "filters": body.get("filters", {}),
            "excludeBody": body.get("excludeBody", False),
            "enabled": True,
            "secret": body.get("secret"),
        }
        jira.state["admin_webhooks"][hook_id] = hook
        return Response(201, admin_shown(hook))

    @jira.route("PUT", r"/rest/webhooks/1.0/webhook/(?P<id>\d+)")
    def update_admin(request):
        if denied := admin_only():
            return denied
        hook = jira.state["admin_webhooks"].get(int(request.match["id"]))
        if hook is None:
            return Response(404, {"errorMessages": ["Webhook not found."]})
        body = request.json()
        hook.update(
            {
                k: body[k]
                for k in ("name", "url", "events", "filters", "excludeBody", "enabled", "secret")
                if k in body
            }
        )
        return admin_shown(hook)

    @jira.route("DELETE", r"/rest/webhooks/1.0/webhook/(?P<id>\d+)")
    def delete_admin(request):
        if denied := admin_only():
            return denied
        jira.state["admin_webhooks"].pop(int(request.match["id"]), None)
        return Response(204)

    return jira
