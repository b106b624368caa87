"""The OpenAPI schema at /api/schema/ (valid OpenAPI 3, the API's operations only, with the token scheme, the error
answers and examples) and the docs pages, served from the deployment's own static files (no CDN); in Chromium,
a token made in the admin and the Swagger UI page, with no request leaving the server."""

import json
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema
from playwright.sync_api import expect

from tenants.models import ApiToken


@pytest.mark.django_db
def test_the_schema_is_openapi_3_of_the_api_only_with_errors_and_examples(client):
    answer = client.get("/api/schema/?format=json")

    assert answer.status_code == 200
    schema = json.loads(answer.content)
    validate_schema(schema)  # drf-spectacular's OpenAPI 3 validation; raises on an invalid schema
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "ml-connector operator API"
    assert all(path.startswith("/api/v1/") for path in schema["paths"])  # no webhook endpoints
    assert {
        "/api/v1/tenants/{slug}/pause/",
        "/api/v1/events/{id}/rollback/",
        "/api/v1/events/replay/",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["tokenAuth"]["description"],
    }  # fmt: skip
    rollback = schema["paths"]["/api/v1/events/{id}/rollback/"]["post"]
    assert {"200", "202", "400", "401", "403", "404", "409", "415", "429", "502"} <= set(
        rollback["responses"]
    )
    assert "examples" in rollback["requestBody"]["content"]["application/json"]
    assert "examples" in rollback["responses"]["202"]["content"]["application/json"]
    assert "examples" in rollback["responses"]["409"]["content"]["application/json"]
    yaml = client.get("/api/schema/")
    assert yaml.status_code == 200 and yaml.content.startswith(b"openapi: 3.")


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_their_scripts_from_this_server(client, page):
    answer = client.get(page)

    assert answer.status_code == 200
    html = answer.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and not [url for url in sources if urlsplit(url).netloc], sources  # nothing from elsewhere
    for url in sources:
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), url  # the sidecar package ships it


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_token_made_in_the_admin_works_and_the_docs_page_renders_offline(live_server, page, suggested_groups,
                                                                           django_user_model):  # fmt: skip
    user = django_user_model.objects.create_user("alice", password="alice-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    outside = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(live_server.url)
            and not request.url.startswith(("data:", "blob:")) else None)  # fmt: skip
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/tenants/apitoken/add/")
    page.fill("#id_name", "laptop")
    page.click("input[name=_save]")
    secret = page.locator("#api-token-secret").input_value()
    assert secret.startswith("mlc_") and ApiToken.objects.get().user == user
    page.goto(f"{live_server.url}/admin/tenants/apitoken/")
    expect(page.locator("#result_list")).to_contain_text("laptop")
    assert secret not in page.content()
    me = page.request.get(f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {secret}"})
    assert me.status == 200 and me.json()["username"] == "alice" and me.json()["may"]["rollback"] is True

    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ml-connector operator API")
    expect(page.get_by_text("Roll back one event (dry run first)")).to_be_visible()
    assert outside == []
