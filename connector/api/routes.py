"""The operator API's routes (/api/v1/…): the urlconf the OpenAPI schema is generated from (webhooks are not in it).
`manage.py spectacular --urlconf connector.api.routes` writes the same schema as GET /api/schema/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from connector.api.views import EventViewSet, MeView, TenantViewSet

router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("events", EventViewSet, basename="event")

urlpatterns = [path("api/v1/", include([path("me/", MeView.as_view(), name="api-me"), *router.urls]))]
