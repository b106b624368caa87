"""Inbound HTTP endpoints: the FreshBooks and Jira webhooks, on one base (connector.endpoints.base)."""
