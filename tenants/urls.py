from django.urls import path

from tenants import views

urlpatterns = [
    path(
        "oauth/freshbooks/connect/<slug:slug>/",
        views.connect,
        {"vendor": "freshbooks"},
        name="freshbooks-oauth-connect",
    ),
    path("oauth/freshbooks/callback/", views.freshbooks_callback, name="freshbooks-oauth-callback"),
    path("oauth/freshbooks/choose/", views.freshbooks_choose, name="freshbooks-oauth-choose"),
    path("oauth/jira/connect/<slug:slug>/", views.connect, {"vendor": "jira"}, name="jira-oauth-connect"),
    path("oauth/jira/callback/", views.jira_callback, name="jira-oauth-callback"),
    path("oauth/jira/choose/", views.jira_choose, name="jira-oauth-choose"),
]
