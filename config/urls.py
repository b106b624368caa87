from django.contrib import admin
from django.urls import include, path

from audit.metrics import metrics_view
from config.views import healthz

admin.site.site_header = "ml-connector"
admin.site.site_title = "ml-connector"
admin.site.index_title = "FreshBooks → Jira"

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("connector.urls")),
    path("", include("tenants.urls")),
]
