from django.urls import path

from connector.jira_views import admin_webhook, dynamic_webhook
from connector.views import freshbooks_webhook

urlpatterns = [
    path("webhooks/freshbooks/", freshbooks_webhook, name="freshbooks-webhook"),
    path("webhooks/jira/", dynamic_webhook, name="jira-webhook"),
    path("webhooks/jira/<uuid:site_uuid>/", admin_webhook, name="jira-admin-webhook"),
]
