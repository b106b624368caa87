from django.urls import path

from connector.endpoints.freshbooks import freshbooks_webhook
from connector.endpoints.jira import admin_webhook, dynamic_webhook

urlpatterns = [
    path("webhooks/freshbooks/", freshbooks_webhook, name="freshbooks-webhook"),
    path("webhooks/jira/", dynamic_webhook, name="jira-webhook"),
    path("webhooks/jira/<uuid:site_uuid>/", admin_webhook, name="jira-admin-webhook"),
]
