from django.urls import path

from audit.metrics import count_deliveries
from connector.jira_views import admin_webhook, dynamic_webhook
from connector.views import freshbooks_webhook

urlpatterns = [
    path(
        "webhooks/freshbooks/", count_deliveries("freshbooks")(freshbooks_webhook), name="freshbooks-webhook"
    ),
    path("webhooks/jira/", count_deliveries("jira")(dynamic_webhook), name="jira-webhook"),
    path(
        "webhooks/jira/<uuid:site_uuid>/", count_deliveries("jira")(admin_webhook), name="jira-admin-webhook"
    ),
]
