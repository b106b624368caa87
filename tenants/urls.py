from django.urls import path

from tenants import views

urlpatterns = [
    path(f"oauth/{vendor}/{step}/", view, {"vendor": vendor}, name=f"{vendor}-oauth-{step}")
    for vendor in ("freshbooks", "jira")
    for step, view in (("callback", views.callback), ("choose", views.choose))
] + [
    path(
        f"oauth/{vendor}/connect/<slug:slug>/",
        views.connect,
        {"vendor": vendor},
        name=f"{vendor}-oauth-connect",
    )
    for vendor in ("freshbooks", "jira")
]
