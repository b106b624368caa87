"""The application's URLs plus the two baselines of `make bench-ingest`: a trivial view, and a floor view that
does the least any durable webhook receiver must do (parse the form, check the HMAC, one INSERT, autocommit)."""

import hmac
from urllib.parse import parse_qsl

from django.db import connection
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as app_urlpatterns
from connector.freshbooks import signature

VERIFIER = "bench-verifier-0123456789"  # tests.bench.common.VERIFIER
FLOOR_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, name text, object_id text, body text)"
)


@csrf_exempt
def trivial(request):
    return HttpResponse(b"ok", content_type="text/plain")


@csrf_exempt
def floor(request):
    body = request.body
    fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    if not hmac.compare_digest(
        signature.compute(fields, VERIFIER), request.headers.get(signature.HEADER, "")
    ):
        return HttpResponse(b"bad signature", status=401, content_type="text/plain")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_floor (name, object_id, body) VALUES (%s, %s, %s)",
            [fields.get("name"), fields.get("object_id"), body.decode()],
        )
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial), path("bench/floor/", floor), *app_urlpatterns]
