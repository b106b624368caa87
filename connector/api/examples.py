"""Examples shown on the API's docs page (drf-spectacular OpenApiExample): what requests and answers look like."""

from drf_spectacular.utils import OpenApiExample

HEALTH = {
    "attention": True,
    "failed_24h": 3,
    "alerts_24h": 1,
    "connections": {"freshbooks": "connected", "jira": "needs_reconnect", "needs_reconnect": ["Jira"]},
    "webhooks": {"jira": "ok", "freshbooks_callbacks": 6, "freshbooks_unverified": 0},
    "backlog": {"queued": 12, "waiting": 0, "oldest_queued_seconds": 4.2},
    "last_reconcile": "clean at 2026-12-05 08:00",
    "reconcile": {
        "result": "ok",
        "started_at": "2026-12-05T08:00:00Z",
        "finished_at": "2026-12-05T08:00:09Z",
        "detail": "listed 40 record(s), 40 already known, created 0 event(s)",
        "actor": "schedule",
        "watermark": "2026-12-05T08:00:00Z",
        "enabled": True,
        "interval_minutes": 60,
    },
}
TENANT_BODY = {
    "slug": "acme",
    "name": "Acme Corp",
    "active": True,
    "auto_retry": False,
    "paused_at": None,
    "paused_by": "",
    "pause_note": "",
    "created_at": "2026-11-01T09:00:00Z",
    "updated_at": "2026-11-20T10:00:00Z",
    "health": HEALTH,
}
TENANT = OpenApiExample("Acme", value=TENANT_BODY, response_only=True)
TENANT_PAGE = OpenApiExample(
    "A page of tenants",
    value={"count": 1, "next": None, "previous": None, "results": [TENANT_BODY]},
    response_only=True,
)
EVENT_BODY = {
    "id": 4711,
    "tenant": "acme",
    "source": "freshbooks",
    "name": "invoice.create",
    "kind": "invoice",
    "object_id": "98765",
    "account_id": "6BApk",
    "business_id": "77",
    "delivery_id": "",
    "status": "failed",
    "status_detail": "Jira answered 400: summary is required",
    "failure_reason": "Jira answered 400: summary is required",
    "wait_reason": "",
    "wait_until": None,
    "jira_key": "",
    "processing_runs": 1,
    "duplicate_of": None,
    "replay_requested_by": "",
    "replay_requested_at": None,
    "assigned_to": "alice",
    "resolved_by": "",
    "resolved_at": None,
    "resolution_note": "",
    "received_at": "2026-12-05T08:12:01Z",
    "started_at": "2026-12-05T08:12:01Z",
    "finished_at": "2026-12-05T08:12:02Z",
    "pruned_at": None,
}
EVENT_PAGE = OpenApiExample(
    "Failed invoices of one tenant (?tenant=acme&status=failed&kind=invoice)",
    value={"count": 1, "next": None, "previous": None, "results": [EVENT_BODY]},
    response_only=True,
)
ATTEMPT = {
    "id": 9001,
    "created_at": "2026-12-05T08:12:02Z",
    "actor": "worker",
    "action": "POST /rest/api/3/issue",
    "http_status": 400,
    "duration_ms": 212,
    "error": "Jira answered 400: summary is required",
}
EVENT_DETAIL = OpenApiExample(
    "With audit.view_sensitive_data",
    value={
        **EVENT_BODY,
        "sensitive_data_shown": True,
        "payload": {"name": "invoice.create", "object_id": "98765", "account_id": "6BApk"},
        "record": {"id": 98765, "invoice_number": "0000042"},
        "attempts": [
            {
                **ATTEMPT,
                "request": {"json": {"fields": {"summary": ""}}},
                "response": '{"errors": {}}',
                "previous": None,
            }
        ],
    },
    response_only=True,
)
EVENT_DETAIL_MASKED = OpenApiExample(
    "Without audit.view_sensitive_data",
    value={
        **EVENT_BODY,
        "sensitive_data_shown": False,
        "payload": None,
        "record": None,
        "attempts": [{**ATTEMPT, "request": None, "response": None, "previous": None}],
    },
    response_only=True,
)
REPLAY_REQUEST = OpenApiExample("Replay", value={"dry_run": False}, request_only=True)
BULK_REPLAY_REQUEST = OpenApiExample(
    "Dry run of three", value={"ids": [4711, 4712, 4713], "dry_run": True}, request_only=True
)
REPLAY_RESULT = OpenApiExample(
    "Queued and refused",
    value={
        "dry_run": False,
        "queued": [4711, 4712],
        "refused": [{"id": 4713, "reason": "it is rolled back"}],
        "not_found": [],
    },
    response_only=True,
)
ROLLBACK_DRY_RUN = OpenApiExample("1. Dry run (the default)", value={"dry_run": True}, request_only=True)
ROLLBACK_CONFIRM = OpenApiExample(
    "2. Confirm", value={"dry_run": False, "overwrite": False}, request_only=True
)
ROLLBACK_PLAN = OpenApiExample(
    "The plan",
    value={
        "event": 4711,
        "dry_run": True,
        "plan": ["deletes issue FIN-12"],
        "refused": "",
        "done": [],
        "status": "succeeded",
    },
    response_only=True,
)
ROLLBACK_QUEUED = OpenApiExample(
    "Queued for the worker (202)",
    value={
        "event": 4711,
        "plan": ["deletes issue FIN-12"],
        "overwrite": False,
        "status": "succeeded",
        "status_detail": "Rollback requested by api:alice: queued for the worker.",
        "url": "https://connector.example.com/api/v1/events/4711/",
    },
    response_only=True,
    status_codes=["202"],
)
ROLLBACK_CONFLICT = OpenApiExample(
    "Changed in Jira since (409)",
    value={
        "detail": "changed in Jira since the connector's write (FIN-12 summary): confirm to overwrite",
        "code": "conflict",
        "differences": [
            {"object": "FIN-12", "field": "summary", "ours": "Invoice 42", "now": "Invoice 42 (checked)"}
        ],
    },
    response_only=True,
    status_codes=["409"],
)
RECONCILE_QUEUED = OpenApiExample(
    "Queued",
    value={"tenant": "acme", "task_id": "5d8c0e7a1f2b4c3d9e8f7a6b5c4d3e2f"},
    response_only=True,
    status_codes=["202"],
)
ME = OpenApiExample(
    "An operator",
    value={
        "username": "alice",
        "groups": ["operator"],
        "may": {
            "view_tenants": True,
            "view_events": True,
            "view_sensitive_data": True,
            "replay": True,
            "rollback": True,
            "reconcile": True,
        },
        "token": {
            "name": "nightly replay",
            "prefix": "Ab3dE6gH",
            "created_at": "2026-12-01T09:00:00Z",
            "expires_at": None,
        },
    },
    response_only=True,
)
PAUSE_REQUEST = OpenApiExample("With a note", value={"note": "Jira migration tonight"}, request_only=True)
PAUSED = OpenApiExample(
    "Paused",
    value={
        "tenant": "acme",
        "paused": True,
        "changed": True,
        "paused_at": "2026-12-05T09:10:00Z",
        "paused_by": "api:alice",
        "pause_note": "Jira migration tonight",
        "queued": None,
    },
    response_only=True,
)
RESUMED = OpenApiExample(
    "Resumed",
    value={
        "tenant": "acme",
        "paused": False,
        "changed": True,
        "paused_at": None,
        "paused_by": "",
        "pause_note": "",
        "queued": 17,
    },
    response_only=True,
)
