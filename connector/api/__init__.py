"""The operator API under /api/v1/ (Django REST framework), its OpenAPI schema at /api/schema/ (drf-spectacular)
and its docs page at /api/docs/. See docs/api.md."""
