"""The tenants' background work (created after every migrate by TenantsConfig); see config/queueing.py."""

from config.queueing import Every

SCHEDULES = [
    # OAuth connections idle for a week are refreshed, so their refresh tokens do not expire unused.
    Every("Refresh idle OAuth tokens", "tenants.tasks.refresh_idle_tokens"),
    # API tokens and personal access tokens with an "expires on" date: warned 30 and 7 days before.
    Every("Warn of expiring Jira tokens", "tenants.expiry.warn_expiring"),
]
