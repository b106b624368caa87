"""/api/v1/ (the operator API, connector.api.routes), /api/schema/ (OpenAPI 3, YAML; ?format=json for JSON),
/api/docs/ (Swagger UI) and /api/redoc/ (Redoc), both served from drf-spectacular-sidecar's static files (Redoc without its web fonts). Any
other /api/ path answers a JSON 404 in DRF's shape."""

from django.http import JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from connector.api import routes


@csrf_exempt  # a POST to no such path is a 404, not a CSRF refusal in HTML
def not_found(request, *args, **kwargs):
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    *routes.urlpatterns,
    path("api/schema/", SpectacularAPIView.as_view(urlconf=routes.__name__), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    re_path(r"^api/", not_found),
]
