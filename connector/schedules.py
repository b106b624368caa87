"""The connector's background work: every task it queues, by name, and its schedules (created after every
migrate by ConnectorConfig). Queue one with `config.queueing.enqueue(NAME, *args)`; see config/queueing.py.
"""

from config.queueing import Every

PROCESS_EVENT = "connector.tasks.process_event"  # (event id, actor=...): fetch, render, write to Jira
CONFIRM_VERIFICATION = "connector.freshbooks.registration.confirm_verification"  # (FreshBooksWebhook id)
RECONCILE = "connector.reconcile.reconcile_task"  # (tenant id, actor=...): one reconcile pass
PROCESS_BATCH = "connector.bulk.process_batch"  # (event ids): one batch of bulk work (connector.bulk)
REPLAY_BATCH = "connector.replay.run_batch"  # (ReplayBatch id): a slice of a large replay, then the next
ROLLBACK = (
    "connector.rollback.rollback_task"  # (event id, actor=..., overwrite=...): a rollback asked in a request
)

SCHEDULES = [
    # Dynamic Jira webhooks expire after 30 days: refresh the due ones daily.
    Every("refresh-jira-webhooks", "connector.jira.registration.refresh_all"),
    # Events a stopped worker left processing are queued again.
    Every("requeue-stale-events", "connector.tasks.requeue_stale", minutes=10),
    # Queue each tenant's reconcile when its own interval has elapsed.
    Every("reconcile-tenants", "connector.reconcile.reconcile_due", minutes=5),
    # Events waiting for a vendor (quota, rate limit) resume when their time has come.
    Every("resume-waiting-events", "connector.tasks.resume_waiting", minutes=1),
    # Bulk work (backfill, reconcile catch-up, bulk replay) is released in turns behind live deliveries.
    Every("feed-bulk-work", "connector.bulk.feed", minutes=1),
]
