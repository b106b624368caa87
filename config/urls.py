from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView

from audit.metrics import metrics_view
from config.views import healthz

admin.site.site_header = "ml-connector"
admin.site.site_title = "ml-connector"
admin.site.index_title = "FreshBooks → Jira"

# The admin index lists the connector's own sections first, the framework and task-queue internals after.
APP_ORDER = ["tenants", "connector", "audit", "auth", "django_q"]
_stock_app_list = admin.site.get_app_list


def _app_list(request, app_label=None):
    apps = _stock_app_list(request, app_label)
    return sorted(
        apps, key=lambda app: APP_ORDER.index(app["app_label"]) if app["app_label"] in APP_ORDER else 99
    )


admin.site.get_app_list = _app_list

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path(
        "favicon.ico", lambda request: HttpResponse(status=204), name="favicon"
    ),  # no icon, and no 404 either
    path("healthz/", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("connector.api.urls")),
    path("", include("connector.urls")),
    path("", include("tenants.urls")),
]
